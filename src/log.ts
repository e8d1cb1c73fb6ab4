// Structured logs: one JSON line per event that an operator needs to see in `wrangler tail` or
// Workers Logs. Only the named fields below are written, and their text is scrubbed of anything
// shaped like a key, so no log line can carry a key, a prompt or a completion.

/**
 * What happened: `answer` a non-2xx answer to a caller; `config_error` an invalid TOLLBOOTH_CONFIG;
 * `unreachable` a provider that could not be reached; `retry`, `pause` and `breaker` a resend, a
 * pool paused by a provider 429, and a circuit breaker changing state; `registry` a Pool that could
 * not read the runtime tenants; `webhook` one send of a batch's completion webhook.
 */
export type LogEvent =
	| "answer"
	| "config_error"
	| "unreachable"
	| "retry"
	| "pause"
	| "breaker"
	| "registry"
	| "webhook";

export interface LogFields {
	pool?: string;
	tenant?: string;
	/** The HTTP status the caller got, or the provider sent. */
	status?: number;
	/** A short machine-readable reason: "no_provider_key", "provider_auth", "deadline", ... */
	cause?: string;
	/** tollbooth's own words (never the provider's body, which may quote a key). */
	message?: string;
	/** host and path of a provider URL, never its query. */
	upstream?: string;
	/** The send that failed or is about to be retried, counting the first. */
	attempt?: number;
	/** How long a retry or a pause waits. */
	delayMs?: number;
	/** A circuit breaker's new state. */
	state?: string;
	/** The batch a webhook send is about. */
	batch?: string;
	/** A webhook receiver's host and path, never its query. */
	receiver?: string;
	/** What a webhook send came to: delivered, retry or gave_up. */
	outcome?: string;
}

const FIELD_NAMES = [
	"pool",
	"tenant",
	"status",
	"cause",
	"message",
	"upstream",
	"attempt",
	"delayMs",
	"state",
	"batch",
	"receiver",
	"outcome",
] as const satisfies readonly (keyof LogFields)[];

/**
 * tollbooth's own ids (file-, batch_, msgbatch_, req_ + 32 hex: see durable/batch-files.ts), which
 * the long-token shape would redact: an operator needs them to find the file or batch a line is about.
 */
const OWN_ID = /^(?:file-|batch_|msgbatch_|req_)[0-9a-f]{32}$/;

/** Longest text written for one field: enough for a sentence, too short for a prompt. */
const MAX_TEXT = 400;

const SECRET_SHAPES = [
	// Authorization header values.
	/\b(?:bearer|basic)\s+\S+/gi,
	// Provider keys (sk-..., sk-ant-..., sk-proj-...).
	/\b(?:sk|pk|rk)-[A-Za-z0-9_-]{6,}/g,
];
/** Any other long unbroken token, but for tollbooth's own ids. */
const LONG_TOKEN = /[A-Za-z0-9_-]{32,}/g;

/** The text with anything shaped like a key replaced, cut to a sentence's length. */
export function scrub(text: string): string {
	let clean = text;
	for (const shape of SECRET_SHAPES) clean = clean.replace(shape, "[redacted]");
	clean = clean.replace(LONG_TOKEN, (token) => (OWN_ID.test(token) ? token : "[redacted]"));
	return clean.length > MAX_TEXT ? `${clean.slice(0, MAX_TEXT)}…` : clean;
}

/** One log line as it is written: the event and the fields given, scrubbed. */
export function logLine(event: LogEvent, fields: LogFields): string {
	const line: Record<string, string | number> = { event };
	for (const name of FIELD_NAMES) {
		const value = fields[name];
		if (typeof value === "number" && Number.isFinite(value)) line[name] = value;
		else if (typeof value === "string" && value !== "") line[name] = scrub(value);
	}
	return JSON.stringify(line);
}

/**
 * Writes one event: failures (5xx, config errors, unreachable providers, a webhook given up on)
 * at error level.
 */
export function log(event: LogEvent, fields: LogFields = {}): void {
	const isFailure =
		event === "config_error" ||
		event === "unreachable" ||
		fields.outcome === "gave_up" ||
		(fields.status ?? 0) >= 500;
	if (isFailure) console.error(logLine(event, fields));
	else console.log(logLine(event, fields));
}
