/** The API's validation messages (pydantic's and the service's own) in plain words. */

const RULES: [RegExp, (m: RegExpMatchArray) => string][] = [
  [/^Input should be greater than or equal to (\S+)$/, (m) => `must be ${m[1]} or more`],
  [/^Input should be less than or equal to (\S+)$/, (m) => `must be ${m[1]} or less`],
  [/^Input should be greater than (\S+)$/, (m) => `must be more than ${m[1]}`],
  [/^Input should be less than (\S+)$/, (m) => `must be less than ${m[1]}`],
  [/^Input should be a valid integer/, () => "must be a whole number"],
  [/^Input should be a (valid number|finite number)/, () => "must be a number"],
  [/^Input should be a valid boolean/, () => "must be yes or no"],
  [/^Input should be a valid time/, () => "must be a time such as 14:30"],
  [/^Input should be (.+)$/, (m) => `must be ${m[1].replaceAll("'", "")}`],
  [/^String should have at most (\d+) characters?$/, (m) => `must be ${m[1]} characters or fewer`],
  [/^String should have at least (\d+) characters?$/, (m) => `must be ${m[1]} characters or more`],
  [/^String should match pattern/, () => "is not in the expected form"],
  [/^Field required$/, () => "is required"],
  [/^Extra inputs are not permitted$/, () => "is not a setting this form can change"],
  [/^(Value|Assertion) error, (.+)$/, (m) => m[2]],
];

export function plainMessage(message: string): string {
  for (const [pattern, rewrite] of RULES) {
    const match = message.match(pattern);
    if (match) return rewrite(match);
  }
  return message;
}

/** A message as a sentence: capital first letter, full stop. */
export function sentence(message: string): string {
  const text = message.trim();
  if (!text) return text;
  const capital = text[0].toUpperCase() + text.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

/** `stage_1_batch_size` as "stage 1 batch size", for a field no form has a label for. */
export function humanField(field: string): string {
  return field.replaceAll(".", " ").replaceAll("_", " ");
}
