// Plain-English messages for TOLLBOOTH_CONFIG's validation issues (valibot's message config): what
// a field must be, what it got, and for an unknown key the nearest known one ("did you mean"); and
// the object schemas they need, which take JSON objects only.
import * as v from "valibot";

type Issue = v.BaseIssue<unknown>;
type Entries = v.ObjectEntries;

/** What a value is, in words: `the string "600"`, `a number`, `an object`. */
export function described(value: unknown): string {
	if (value === null) return "null";
	if (Array.isArray(value)) return "a list";
	if (typeof value === "string") return `the string ${JSON.stringify(value.slice(0, 60))}`;
	if (typeof value === "number") return `the number ${value}`;
	if (typeof value === "boolean") return `${value}`;
	if (value === undefined) return "nothing";
	return `${typeof value === "object" ? "an object" : typeof value}`;
}

/** valibot's `expected` of a type issue, in words. */
const TYPE_NAMES: Record<string, string> = {
	number: "a number",
	string: "a string",
	Object: "an object",
	Array: "a list",
	boolean: "true or false",
};

/** What one branch of a union, or a single schema, expected: `a number`, `"auto"`. */
function expectedOf(issue: Issue): string {
	const expected = issue.expected ?? "";
	if (issue.type === "literal" || issue.type === "picklist") {
		return expected
			.replace(/^\((.*)\)$/, "$1")
			.split(" | ")
			.join(" or ");
	}
	return TYPE_NAMES[expected] ?? (expected && `a ${expected}`);
}

/** Edit distance, for "did you mean". */
function distance(a: string, b: string): number {
	let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
	for (let i = 1; i <= a.length; i++) {
		const current = [i];
		for (let j = 1; j <= b.length; j++) {
			const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
			current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution);
		}
		previous = current;
	}
	return previous[b.length] ?? 0;
}

/** The known key nearest to `key` (case-insensitive, at most a third of its letters off). */
export function nearestKey(key: string, known: readonly string[]): string | undefined {
	let best: { name: string; cost: number } | undefined;
	for (const name of known) {
		const cost = distance(key.toLowerCase(), name.toLowerCase());
		if (cost <= Math.max(1, Math.floor(name.length / 3)) && (!best || cost < best.cost)) {
			best = { name, cost };
		}
	}
	return best?.name;
}

function unknownKeys(keys: string[], known: readonly string[]): string {
	return keys
		.map((key) => {
			const near = nearestKey(key, known);
			return near ? `unknown key "${key}" (did you mean "${near}"?)` : `unknown key "${key}"`;
		})
		.join(", ");
}

/** valibot reports an unknown key at the key itself, and only the first; tollbooth names the object. */
function isUnknownKey(issue: Issue): boolean {
	return issue.type === "strict_object" && issue.expected === "never";
}

/** An issue's field path (the object's, for an unknown key), e.g. ["pools", "0", "name"]. */
export function issuePath(issue: Issue): string[] {
	const path = (issue.path ?? []).map((item) => String(item.key));
	return isUnknownKey(issue) ? path.slice(0, -1) : path;
}

/**
 * Whether `issues` leave a value whole enough for cross-field checks: no wrong type or missing
 * field, only values out of range and unknown keys (these do not stop such checks).
 */
export function completeDespite(issues: readonly Issue[] | undefined): boolean {
	return !issues?.some((issue) => issue.kind === "schema" && !isUnknownKey(issue));
}

/** valibot takes a list for an object (typeof [] is "object"); in JSON they differ. */
function noList<TSchema extends v.GenericSchema>(schema: TSchema): TSchema {
	return {
		...schema,
		"~run"(dataset, config) {
			if (!Array.isArray(dataset.value)) return schema["~run"](dataset, config);
			v._addIssue(this, "type", dataset, config);
			return dataset as unknown as ReturnType<TSchema["~run"]>;
		},
	};
}

/** A record (an object of any keys) that refuses a list. */
export function record<
	TKey extends v.GenericSchema<string, string | number | symbol>,
	TValue extends v.GenericSchema,
>(key: TKey, value: TValue) {
	return noList(v.record(key, value));
}

/**
 * A strict object whose issues name a missing field's type and every unknown key with the nearest
 * known one; valibot's own issue has neither the object's entries nor all its unknown keys.
 */
export function strictObject<const TEntries extends Entries>(entries: TEntries) {
	const schema = v.strictObject(entries, (issue) => {
		const at = issue.path?.at(-1);
		if (issue.expected === "never" && at) {
			const keys = Object.keys(at.input as object).filter((key) => !Object.hasOwn(entries, key));
			return unknownKeys(keys, Object.keys(entries));
		}
		const field = at && entries[String(at.key)];
		if (field) {
			// A missing field: the issue its schema raises for nothing, as if it had been given.
			const missing = v.safeParse(field, undefined, { message: configErrorMessage });
			if (!missing.success) return missing.issues[0].message;
		}
		return configErrorMessage(issue);
	});
	return noList(schema);
}

/** The message of every issue a schema gave none of its own (valibot's `message` config). */
export function configErrorMessage(issue: Issue): string {
	switch (issue.type) {
		case "union": {
			// An object of the right shape with a key too many: that is what is wrong with it.
			const unknownKey = issue.issues?.find(isUnknownKey);
			if (unknownKey) return unknownKey.message;
			const options = (issue.issues ?? []).map(expectedOf).filter((option) => option !== "");
			if (options.length === 0) return issue.message;
			return `must be ${options.join(", or ")}; got ${described(issue.input)}`;
		}
		case "literal":
		case "picklist":
			return `must be ${expectedOf(issue)}; got ${described(issue.input)}`;
		case "safe_integer":
			return `must be a whole number, got ${described(issue.input)}`;
		case "finite":
			return `must be a number, got ${described(issue.input)}`;
		case "min_length":
			return "must not be empty";
		case "max_length":
		case "max_value":
			return `must be at most ${String(issue.requirement)}, got ${described(issue.input)}`;
		case "min_value":
			return `must be at least ${String(issue.requirement)}, got ${described(issue.input)}`;
		case "gt_value":
			return `must be more than ${String(issue.requirement)}, got ${described(issue.input)}`;
		default:
			if (issue.kind !== "schema") return issue.message;
			return issue.input === undefined
				? `is required (${expectedOf(issue)})`
				: `must be ${expectedOf(issue)}, got ${described(issue.input)}`;
	}
}

/**
 * How tollbooth parses configuration and admin bodies: messages from configErrorMessage, and one
 * issue per field (a value that is not a whole number is not also reported as too small).
 */
export const VALIDATION = { message: configErrorMessage, abortPipeEarly: true } as const;
