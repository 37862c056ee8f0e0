/** The values a connection's policy document is filled in with. */
export type PolicyValues = { productKey: string; deviceName: string; clientId: string };

/**
 * A client id the policy can name safely: IoT policy resources treat `*` and `?` as wildcards and
 * `${` as a variable, so a client id with them (or a control character) could widen the policy.
 */
export function isPolicySafeClientId(clientId: string): boolean {
  if (clientId.length < 1 || clientId.length > 128 || /[*?$\\{}"]/.test(clientId)) return false;
  for (let i = 0; i < clientId.length; i++) {
    const code = clientId.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return false;
  }
  return true;
}

/**
 * Fills a policy template (templates/policies/secret-*.json) for one connection: every
 * `${onramp:name}` placeholder gets its value (product keys and device names are validated to
 * `[A-Za-z0-9:_-]`, client ids by isPolicySafeClientId). Returns compact JSON; throws when a
 * placeholder is unknown or the document exceeds the 2,048 characters AWS IoT accepts per
 * returned policy document.
 */
export function renderConnectionPolicy(template: string, values: PolicyValues): string {
  const filled = template.replace(/\$\{onramp:([A-Za-z]+)\}/g, (_match, name: string) => {
    const value = (values as Record<string, string>)[name];
    if (value === undefined) throw new Error(`unknown policy placeholder onramp:${name}`);
    return value;
  });
  const compact = JSON.stringify(JSON.parse(filled));
  if (compact.length > 2048) throw new Error("the connection policy is longer than 2,048 characters");
  return compact;
}
