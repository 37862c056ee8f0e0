/**
 * MQTT topic names and filters (MQTT 3.1.1 section 4.7): `+` matches one level, `#` (last, alone)
 * the rest; filters starting with a wildcard never match topics starting with `$`.
 */

/** True for a well-formed topic filter: `+` and `#` only as whole levels, `#` only last. */
export function isValidTopicFilter(filter: string): boolean {
  if (filter.length === 0 || filter.includes("\u0000")) return false;
  const levels = filter.split("/");
  return levels.every((level, index) => {
    if (level.includes("#")) return level === "#" && index === levels.length - 1;
    return !level.includes("+") || level === "+";
  });
}

/** True for a topic name a message can be published to: not empty, no wildcards. */
export function isValidTopicName(topic: string): boolean {
  return topic.length > 0 && !topic.includes("+") && !topic.includes("#") && !topic.includes("\u0000");
}

/** True when the topic name matches the filter (both assumed well-formed). */
export function topicMatchesFilter(filter: string, topic: string): boolean {
  if (topic.startsWith("$") && (filter.startsWith("+") || filter.startsWith("#"))) return false;
  const filterLevels = filter.split("/");
  const topicLevels = topic.split("/");
  for (let i = 0; i < filterLevels.length; i++) {
    const level = filterLevels[i];
    if (level === "#") return true;
    if (i >= topicLevels.length) return false;
    if (level !== "+" && level !== topicLevels[i]) return false;
  }
  return filterLevels.length === topicLevels.length;
}
