// biome-ignore-all lint/suspicious/noTemplateCurlyInString: "${...}" in plain strings is the provisioning template and IoT policy syntax under test, not a JS template.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { evaluateTemplate } from "#core/provisioning-template/index.ts";
import { templateError, valueTemplate } from "./fixtures.ts";

/** Evaluates `value` as the DeviceConfiguration entry "value" and returns the result. */
function evaluateValue(
  value: unknown,
  parameters: Record<string, string> = {},
  extra = {},
): string | undefined {
  return evaluateTemplate(valueTemplate(value, extra), parameters).deviceConfiguration?.value;
}

describe("intrinsic functions", () => {
  it("Ref returns a parameter's value", () => {
    assert.equal(evaluateValue({ Ref: "SerialNumber" }, { SerialNumber: "SN-9" }), "SN-9");
  });

  it("Fn::Join joins a list, with an empty delimiter too", () => {
    assert.equal(evaluateValue({ "Fn::Join": ["-", ["a", { Ref: "SerialNumber" }, "c"]] }), "a-SN-1-c");
    assert.equal(evaluateValue({ "Fn::Join": ["", ["a", "b"]] }), "ab");
    assert.equal(evaluateValue({ "Fn::Join": [":", []] }), "");
  });

  it("Fn::Join takes a list made by another intrinsic", () => {
    assert.equal(evaluateValue({ "Fn::Join": ["+", { "Fn::Split": [",", "x,y"] }] }), "x+y");
  });

  it("Fn::Split and Fn::Select pick an element, with the index as number or digit string", () => {
    assert.equal(evaluateValue({ "Fn::Select": [1, { "Fn::Split": ["-", "SN-1"] }] }), "1");
    assert.equal(evaluateValue({ "Fn::Select": ["0", ["first", "second"]] }), "first");
    assert.equal(
      evaluateValue(
        { "Fn::Select": [{ Ref: "Index" }, ["a", "b"]] },
        { Index: "1" },
        {
          Parameters: { Index: { Type: "Number" } },
        },
      ),
      "b",
    );
  });

  it("Ref to a CommaDelimitedList parameter gives a list", () => {
    const extra = { Parameters: { Groups: { Type: "CommaDelimitedList", Default: "a,b,c" } } };
    assert.equal(evaluateValue({ "Fn::Select": [2, { Ref: "Groups" }] }, {}, extra), "c");
    assert.equal(evaluateValue({ "Fn::Join": ["|", { Ref: "Groups" }] }, {}, extra), "a|b|c");
  });

  it("Fn::FindInMap reads a two-level map, keys from intrinsics", () => {
    const extra = {
      Parameters: { Region: { Type: "String" } },
      Mappings: {
        Endpoints: { eu: { Url: "https://eu.example", Count: 3 }, us: { Url: "https://us.example" } },
      },
    };
    assert.equal(
      evaluateValue({ "Fn::FindInMap": ["Endpoints", { Ref: "Region" }, "Url"] }, { Region: "us" }, extra),
      "https://us.example",
    );
    assert.equal(
      evaluateValue({ "Fn::FindInMap": ["Endpoints", "eu", "Count"] }, { Region: "eu" }, extra),
      "3",
    );
  });

  it("Fn::FindInMap can return a list value", () => {
    const extra = { Mappings: { M: { k: { list: ["x", "y"] } } } };
    assert.equal(
      evaluateValue({ "Fn::Select": [1, { "Fn::FindInMap": ["M", "k", "list"] }] }, {}, extra),
      "y",
    );
  });

  it("Fn::Sub substitutes parameters in the string form", () => {
    assert.equal(evaluateValue({ "Fn::Sub": "things/${SerialNumber}/telemetry" }), "things/SN-1/telemetry");
  });

  it("Fn::Sub takes variables, evaluated, before parameters in the list form", () => {
    const sub = {
      "Fn::Sub": [
        "${Prefix}/${SerialNumber}",
        { Prefix: { "Fn::Join": ["", ["p", "x"]] }, SerialNumber: "override" },
      ],
    };
    assert.equal(evaluateValue(sub), "px/override");
  });

  it("Fn::Sub substitutes AWS::IoT::Certificate::* parameters", () => {
    const template = valueTemplate(
      { "Fn::Sub": "cn=${AWS::IoT::Certificate::CommonName}" },
      { Parameters: { "AWS::IoT::Certificate::CommonName": { Type: "String" } } },
    );
    const plan = evaluateTemplate(template, {}, { certificate: { id: "x", commonName: "SN-7" } });
    assert.equal(plan.deviceConfiguration?.value, "cn=SN-7");
  });

  it("Fn::Sub keeps ${!Literal} as ${Literal} and an unterminated ${ as written", () => {
    assert.equal(evaluateValue({ "Fn::Sub": "${!SerialNumber} ${SerialNumber}" }), "${SerialNumber} SN-1");
    assert.equal(evaluateValue({ "Fn::Sub": "cost: ${ 5" }), "cost: ${ 5");
    assert.equal(evaluateValue({ "Fn::Sub": "$ and {}" }), "$ and {}");
  });

  it("Fn::Sub keeps AWS IoT policy variables for the policy engine", () => {
    const value =
      "client/${iot:Connection.Thing.ThingName} ${iot:ClientId} ${aws:SourceIp} ${credentials-iot:ThingName}";
    assert.equal(evaluateValue({ "Fn::Sub": value }), value);
    assert.equal(
      evaluateValue({ "Fn::Sub": "${iot:Certificate.Subject.CommonName}/${SerialNumber}" }),
      "${iot:Certificate.Subject.CommonName}/SN-1",
    );
  });

  it("plain strings are never substituted", () => {
    assert.equal(evaluateValue("things/${SerialNumber}"), "things/${SerialNumber}");
  });

  it("intrinsics nest", () => {
    const value = {
      "Fn::Join": [
        "/",
        [{ "Fn::Select": [0, { "Fn::Split": [".", { "Fn::Sub": "${SerialNumber}.x" }] }] }, "end"],
      ],
    };
    assert.equal(evaluateValue(value), "SN-1/end");
  });

  const errors: Array<{
    name: string;
    value: unknown;
    extra?: Record<string, unknown>;
    path: string;
    message: RegExp;
  }> = [
    {
      name: "two keys next to an intrinsic",
      value: { Ref: "SerialNumber", Other: "x" },
      path: "DeviceConfiguration.value",
      message: /exactly one key/,
    },
    {
      name: "an unknown intrinsic",
      value: { "Fn::GetAtt": ["thing", "Arn"] },
      path: "DeviceConfiguration.value.Fn::GetAtt",
      message: /unknown intrinsic function "Fn::GetAtt"/,
    },
    {
      name: "Ref to a non-string",
      value: { Ref: 5 },
      path: "DeviceConfiguration.value.Ref",
      message: /Ref takes a parameter name/,
    },
    {
      name: "Ref to an unknown parameter",
      value: { Ref: "Serial" },
      path: "DeviceConfiguration.value",
      message: /Ref to unknown parameter "Serial"/,
    },
    {
      name: "Ref to an inherited property name",
      value: { Ref: "constructor" },
      path: "DeviceConfiguration.value",
      message: /unknown parameter "constructor"/,
    },
    {
      name: "Fn::Join with one argument",
      value: { "Fn::Join": ["-"] },
      path: "DeviceConfiguration.value.Fn::Join",
      message: /Fn::Join takes a list of 2 arguments/,
    },
    {
      name: "Fn::Join of a string",
      value: { "Fn::Join": ["-", "abc"] },
      path: "DeviceConfiguration.value.Fn::Join[1]",
      message: /expected a list/,
    },
    {
      name: "Fn::Join of an object element",
      value: { "Fn::Join": ["-", ["a", {}]] },
      path: "DeviceConfiguration.value.Fn::Join[1][1]",
      message: /expected a string, got an object/,
    },
    {
      name: "Fn::Join with a list delimiter",
      value: { "Fn::Join": [[","], ["a"]] },
      path: "DeviceConfiguration.value.Fn::Join[0]",
      message: /expected a string/,
    },
    {
      name: "Fn::Select with a negative index",
      value: { "Fn::Select": [-1, ["a"]] },
      path: "DeviceConfiguration.value.Fn::Select[0]",
      message: /non-negative integer index/,
    },
    {
      name: "Fn::Select with a word index",
      value: { "Fn::Select": ["one", ["a"]] },
      path: "DeviceConfiguration.value.Fn::Select[0]",
      message: /non-negative integer index/,
    },
    {
      name: "Fn::Select out of range",
      value: { "Fn::Select": [2, ["a", "b"]] },
      path: "DeviceConfiguration.value.Fn::Select[0]",
      message: /index 2 is out of range for a list of 2/,
    },
    {
      name: "Fn::Select of null",
      value: { "Fn::Select": [0, [null]] },
      path: "DeviceConfiguration.value.Fn::Select[1][0]",
      message: /null/,
    },
    {
      name: "Fn::Select with three arguments",
      value: { "Fn::Select": [0, ["a"], "x"] },
      path: "DeviceConfiguration.value.Fn::Select",
      message: /2 arguments/,
    },
    {
      name: "Fn::Split with an empty delimiter",
      value: { "Fn::Split": ["", "abc"] },
      path: "DeviceConfiguration.value.Fn::Split[0]",
      message: /non-empty delimiter/,
    },
    {
      name: "Fn::Split as a flat value",
      value: { "Fn::Split": [",", "a,b"] },
      path: "DeviceConfiguration.value",
      message: /flat value/,
    },
    {
      name: "Fn::FindInMap with two arguments",
      value: { "Fn::FindInMap": ["M", "k"] },
      path: "DeviceConfiguration.value.Fn::FindInMap",
      message: /3 arguments/,
    },
    {
      name: "Fn::FindInMap of an unknown map",
      value: { "Fn::FindInMap": ["Nope", "k", "v"] },
      path: "DeviceConfiguration.value.Fn::FindInMap[0]",
      message: /unknown mapping "Nope"/,
    },
    {
      name: "Fn::FindInMap of an unknown top key",
      value: { "Fn::FindInMap": ["M", "x", "v"] },
      extra: { Mappings: { M: { k: { v: "1" } } } },
      path: "DeviceConfiguration.value.Fn::FindInMap[1]",
      message: /has no key "x"/,
    },
    {
      name: "Fn::FindInMap of an unknown second key",
      value: { "Fn::FindInMap": ["M", "k", "w"] },
      extra: { Mappings: { M: { k: { v: "1" } } } },
      path: "DeviceConfiguration.value.Fn::FindInMap[2]",
      message: /"M.k" has no key "w"/,
    },
    {
      name: "Fn::Sub of a number",
      value: { "Fn::Sub": 5 },
      path: "DeviceConfiguration.value.Fn::Sub",
      message: /Fn::Sub takes a string/,
    },
    {
      name: "Fn::Sub with variables that are a list",
      value: { "Fn::Sub": ["${a}", ["a"]] },
      path: "DeviceConfiguration.value.Fn::Sub[1]",
      message: /variables must be an object/,
    },
    {
      name: "Fn::Sub with three arguments",
      value: { "Fn::Sub": ["${a}", {}, {}] },
      path: "DeviceConfiguration.value.Fn::Sub",
      message: /2 arguments/,
    },
    {
      name: "Fn::Sub of an unknown variable",
      value: { "Fn::Sub": "${Serial}" },
      path: "DeviceConfiguration.value.Fn::Sub",
      message: /unknown variable "\$\{Serial\}"/,
    },
    {
      name: "Fn::Sub of an empty ${}",
      value: { "Fn::Sub": "a${}b" },
      path: "DeviceConfiguration.value.Fn::Sub",
      message: /empty variable reference/,
    },
    {
      name: "Fn::Sub of a list variable value",
      value: { "Fn::Sub": ["${a}", { a: ["x"] }] },
      path: "DeviceConfiguration.value.Fn::Sub[1].a",
      message: /expected a string/,
    },
    {
      name: "Fn::Sub of a list parameter",
      value: { "Fn::Sub": "${G}" },
      extra: { Parameters: { G: { Type: "CommaDelimitedList", Default: "a,b" } } },
      path: "DeviceConfiguration.value.Fn::Sub",
      message: /list parameter/,
    },
  ];
  for (const { name, value, extra, path, message } of errors) {
    it(`rejects ${name} (${path})`, () => {
      const error = templateError(() => evaluateTemplate(valueTemplate(value, extra), {}));
      assert.equal(error.path, path);
      assert.match(error.message, message);
      assert.ok(error.message.startsWith(`${path}: `), error.message);
    });
  }

  it("refuses nesting deeper than the limit", () => {
    let value: unknown = "x";
    for (let i = 0; i < 100; i++) value = [value];
    const error = templateError(() => evaluateTemplate(valueTemplate(value), {}));
    assert.match(error.message, /nesting is deeper than 64 levels/);
  });
});
