import assert from "node:assert/strict";
import { it } from "node:test";
import { Relation } from "#local/iot/relation.ts";

it("links both ways, unlinks, drops a side, and round-trips through JSON", () => {
  const r = new Relation({ thingA: ["cert1", "cert2"] });
  assert.equal(r.add("thingB", "cert1"), true);
  assert.equal(r.add("thingB", "cert1"), false);
  assert.deepEqual(r.rightsOf("thingA"), ["cert1", "cert2"]);
  assert.deepEqual(r.leftsOf("cert1"), ["thingA", "thingB"]);
  assert.equal(r.remove("thingA", "cert1"), true);
  assert.equal(r.remove("thingA", "cert1"), false);
  assert.deepEqual(r.leftsOf("cert1"), ["thingB"]);
  r.removeRight("cert2");
  assert.deepEqual(r.rightsOf("thingA"), []);
  r.removeLeft("thingB");
  assert.deepEqual(r.leftsOf("cert1"), []);
  r.add("thingC", "cert3");
  assert.deepEqual(new Relation(r.toJSON()).toJSON(), { thingC: ["cert3"] });
});
