// biome-ignore-all lint/suspicious/noTemplateCurlyInString: "${iot:...}" is IoT policy variable syntax, not a JS template.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { NotFoundError } from "#core/errors.ts";
import {
  evaluateTemplate,
  MAX_POLICY_DOCUMENT_LENGTH,
  MAX_TEMPLATE_BODY_LENGTH,
  TemplateError,
  validateTemplateName,
} from "#core/provisioning-template/index.ts";
import {
  DEVICE_POLICY_DOCUMENT,
  DEVICE_POLICY_NAME,
  listPolicyDocuments,
  listProvisioningTemplates,
  loadPolicyDocument,
  loadProvisioningTemplate,
  PROVISIONING_TEMPLATES,
} from "#templates/catalog.ts";

const CERT_ID = "ab".repeat(32);
const THING_NAME = "${iot:Connection.Thing.ThingName}";
const templatesDir = new URL("../../templates/", import.meta.url);

/** Parameters that make each shipped template evaluate, as its runtime passes them. */
const SAMPLE_INPUT: Record<string, Parameters<typeof evaluateTemplate>> = {
  "cvm-device": ["", { SerialNumber: "SN-0001", ProductKey: "pk-lamp", CertificateId: CERT_ID }],
  "cvm-device-certificate-policy": [
    "",
    { SerialNumber: "SN-0004", ProductKey: "pk-lamp", CertificateId: CERT_ID },
  ],
  "jitp-device": ["", {}, { certificate: { id: CERT_ID, commonName: "SN-0002" } }],
  "fleet-claim-device": ["", { SerialNumber: "SN-0003" }, { certificate: { id: CERT_ID } }],
};

function plan(name: string) {
  const [, parameters, options] = SAMPLE_INPUT[name] ?? assert.fail(`no sample input for ${name}`);
  return evaluateTemplate(loadProvisioningTemplate(name), parameters, options);
}

describe("templates/catalog", () => {
  it("lists every JSON file of templates/provisioning and templates/policies", () => {
    const files = (dir: string) =>
      readdirSync(new URL(dir, templatesDir))
        .filter((f) => f.endsWith(".json"))
        .map((f) => f.replace(/\.json$/, ""))
        .sort();
    assert.deepEqual(listProvisioningTemplates(), files("provisioning/"));
    assert.deepEqual(listProvisioningTemplates(), [
      "cvm-device",
      "cvm-device-certificate-policy",
      "fleet-claim-device",
      "jitp-device",
    ]);
    assert.deepEqual(Object.values(PROVISIONING_TEMPLATES).sort(), listProvisioningTemplates());
    assert.deepEqual(listPolicyDocuments(), files("policies/"));
    assert.ok(listPolicyDocuments().includes(DEVICE_POLICY_DOCUMENT));
  });

  it("loads templates as compact JSON equal to the file", () => {
    for (const name of listProvisioningTemplates()) {
      const body = loadProvisioningTemplate(name);
      const file = readFileSync(new URL(`provisioning/${name}.json`, templatesDir), "utf8");
      assert.deepEqual(JSON.parse(body), JSON.parse(file));
      assert.equal(body, JSON.stringify(JSON.parse(file)));
    }
  });

  it("refuses unknown names, including paths, with NotFoundError", () => {
    for (const name of ["nope", "../catalog", "provisioning/cvm-device", "cvm-device.json", ""]) {
      assert.throws(() => loadProvisioningTemplate(name), NotFoundError);
      assert.throws(() => loadPolicyDocument(name), NotFoundError);
    }
  });

  // The vending flow activates its certificate only after the registry commit; the others activate.
  const expectedStatus: Record<string, string> = {
    "cvm-device": "INACTIVE",
    "cvm-device-certificate-policy": "INACTIVE",
    "jitp-device": "ACTIVE",
    "fleet-claim-device": "ACTIVE",
  };
  for (const name of ["cvm-device", "cvm-device-certificate-policy", "jitp-device", "fleet-claim-device"]) {
    describe(`provisioning/${name}.json`, () => {
      it("evaluates, within AWS IoT's limits, and attaches the shared device policy by name", () => {
        assert.equal(validateTemplateName(name), name);
        assert.ok(loadProvisioningTemplate(name).length <= MAX_TEMPLATE_BODY_LENGTH);
        const result = plan(name);
        assert.deepEqual(result.policies, [{ logicalId: "policy", policyName: DEVICE_POLICY_NAME }]);
        assert.equal(result.certificate?.certificateId, CERT_ID);
        assert.equal(result.certificate?.status, expectedStatus[name]);
      });
    });
  }

  it("every template in the folder has sample input and evaluates", () => {
    for (const name of listProvisioningTemplates()) assert.ok(plan(name).thing, name);
  });

  it("cvm-device: thing named from the serial, with productKey and serialNumber attributes", () => {
    const result = plan("cvm-device");
    assert.equal(result.thing?.thingName, "SN-0001");
    assert.deepEqual(result.thing?.attributePayload, { productKey: "pk-lamp", serialNumber: "SN-0001" });
    const error = (() => {
      try {
        evaluateTemplate(loadProvisioningTemplate("cvm-device"), {
          SerialNumber: "SN-1",
          CertificateId: CERT_ID,
        });
      } catch (e) {
        return e;
      }
    })();
    assert.ok(error instanceof TemplateError);
    assert.equal(error.path, "Parameters.ProductKey");
  });

  it("jitp-device: thing named from the certificate CN, Country and Organization from the certificate or Defaults", () => {
    const result = plan("jitp-device");
    assert.equal(result.thing?.thingName, "SN-0002");
    assert.deepEqual(result.thing?.attributePayload, {
      serialNumber: "SN-0002",
      country: "unknown",
      organization: "unknown",
      provisionedBy: "jitp",
    });
    const withSubject = evaluateTemplate(
      loadProvisioningTemplate("jitp-device"),
      {},
      {
        certificate: { id: CERT_ID, commonName: "SN-9", country: "DE", organization: "Acme" },
      },
    );
    assert.equal(withSubject.thing?.attributePayload?.country, "DE");
    assert.equal(withSubject.thing?.attributePayload?.organization, "Acme");
    assert.throws(
      () => evaluateTemplate(loadProvisioningTemplate("jitp-device"), {}, { certificate: { id: CERT_ID } }),
      (e: unknown) => e instanceof TemplateError && e.path === "Parameters.AWS::IoT::Certificate::CommonName",
    );
  });

  it("fleet-claim-device: returns the device's topics as DeviceConfiguration", () => {
    assert.deepEqual(plan("fleet-claim-device").deviceConfiguration, {
      thingName: "SN-0003",
      topicPrefix: "things/SN-0003/",
      shadowTopicPrefix: "$aws/things/SN-0003/shadow/",
    });
  });
});

describe("policies/device-policy.json", () => {
  const document = JSON.parse(loadPolicyDocument(DEVICE_POLICY_DOCUMENT)) as {
    Version: string;
    Statement: Array<{
      Effect: string;
      Action: string | string[];
      Resource: string | string[];
      Condition?: unknown;
    }>;
  };
  const list = (value: string | string[]) => (Array.isArray(value) ? value : [value]);
  const statementsFor = (action: string) => document.Statement.filter((s) => list(s.Action).includes(action));

  it("is least privilege: no wildcard action, no bare * resource, only Allow", () => {
    assert.equal(document.Version, "2012-10-17");
    for (const statement of document.Statement) {
      assert.equal(statement.Effect, "Allow");
      for (const action of list(statement.Action)) assert.match(action, /^iot:[A-Za-z]+$/);
      for (const resource of list(statement.Resource)) {
        assert.notEqual(resource, "*");
        assert.ok(resource.startsWith("arn:aws:iot:*:*:"), resource);
        assert.ok(resource.includes(THING_NAME), `${resource} is not scoped to the connected thing`);
      }
    }
    const actions = new Set(document.Statement.flatMap((s) => list(s.Action)));
    assert.deepEqual([...actions].sort(), ["iot:Connect", "iot:Publish", "iot:Receive", "iot:Subscribe"]);
  });

  it("connects only as the thing the certificate is attached to", () => {
    const [connect, ...others] = statementsFor("iot:Connect");
    assert.equal(others.length, 0);
    assert.deepEqual(list(connect?.Resource ?? []), [`arn:aws:iot:*:*:client/${THING_NAME}`]);
    assert.deepEqual(connect?.Condition, { Bool: { "iot:Connection.Thing.IsAttached": "true" } });
  });

  it("publishes and receives on the thing's topics; subscribes on the matching topic filters", () => {
    const topics = [
      "things/${iot:Connection.Thing.ThingName}/*",
      "$aws/things/${iot:Connection.Thing.ThingName}/shadow/*",
    ];
    for (const action of ["iot:Publish", "iot:Receive"]) {
      assert.deepEqual(
        statementsFor(action).flatMap((s) => list(s.Resource)),
        topics.map((t) => `arn:aws:iot:*:*:topic/${t}`),
      );
    }
    assert.deepEqual(
      statementsFor("iot:Subscribe").flatMap((s) => list(s.Resource)),
      topics.map((t) => `arn:aws:iot:*:*:topicfilter/${t}`),
    );
  });

  it("fits AWS IoT's policy size and survives a template as an inline PolicyDocument untouched", () => {
    const text = loadPolicyDocument(DEVICE_POLICY_DOCUMENT);
    assert.ok(text.length <= MAX_POLICY_DOCUMENT_LENGTH);
    for (const PolicyDocument of [text, JSON.parse(text)]) {
      const inline = evaluateTemplate(
        { Resources: { policy: { Type: "AWS::IoT::Policy", Properties: { PolicyDocument } } } },
        {},
      );
      assert.equal(inline.policies[0]?.policyDocument, text);
    }
  });
});
