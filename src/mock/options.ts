// The mock provider's settings: their shape, defaults, validation, and reading them from env vars.
import * as v from "valibot";

export const MOCK_FAULTS = [
	"none",
	"500",
	"503",
	"529",
	"hang",
	"reset",
	"cut-stream",
	"slow-stream",
] as const;
export type MockFault = (typeof MOCK_FAULTS)[number];

export interface MockOptions {
	/** Continuous token bucket refilled at this rate, starting full. */
	requestsPerMinute: number;
	/** Same; a request is charged its prompt + completion tokens on arrival. */
	tokensPerMinute: number;
	/** Bucket capacity in seconds of each limit: 60 holds a whole minute, like a provider's. */
	burstSeconds: number;
	/** Before the response, or before the first chunk of a stream. */
	latencyMs: number;
	/** Between stream chunks. */
	chunkDelayMs: number;
	/** Length of each answer in tokens, capped by the request's max tokens. */
	completionTokens: number;
	/** When set, a request without exactly this key gets the provider's own 401. */
	apiKey?: string;
	/** A request header `x-mock-fault` overrides it per request. */
	fault?: MockFault;
}

// Generous limits and no delay, so a test or a dev session only meets a limit it asked for.
export const DEFAULT_MOCK_OPTIONS: MockOptions = {
	requestsPerMinute: 1_000,
	tokensPerMinute: 1_000_000,
	burstSeconds: 60,
	latencyMs: 0,
	chunkDelayMs: 0,
	completionTokens: 20,
	fault: "none",
};

/** A number, or a string of one (env vars are strings). */
const coercedNumber = v.pipe(v.unknown(), v.transform(Number), v.number(), v.finite());
const count = v.pipe(coercedNumber, v.safeInteger(), v.minValue(0));
const perMinute = v.pipe(coercedNumber, v.gtValue(0));

/** Validates a partial update; `apiKey: null` (JSON has no undefined) removes the key. */
export const partialMockOptionsSchema = v.partial(
	v.strictObject({
		requestsPerMinute: perMinute,
		tokensPerMinute: perMinute,
		burstSeconds: v.pipe(coercedNumber, v.gtValue(0), v.maxValue(60)),
		latencyMs: count,
		chunkDelayMs: count,
		completionTokens: count,
		apiKey: v.pipe(
			v.nullish(v.string()),
			v.transform((key) => key ?? undefined),
		),
		fault: v.picklist(MOCK_FAULTS),
	}),
);

const ENV_NAMES = {
	MOCK_RPM: "requestsPerMinute",
	MOCK_TPM: "tokensPerMinute",
	MOCK_BURST_SECONDS: "burstSeconds",
	MOCK_LATENCY_MS: "latencyMs",
	MOCK_CHUNK_DELAY_MS: "chunkDelayMs",
	MOCK_COMPLETION_TOKENS: "completionTokens",
	MOCK_API_KEY: "apiKey",
	MOCK_FAULT: "fault",
} as const satisfies Record<string, keyof MockOptions>;

/** Reads MOCK_* vars (strings or numbers); absent or empty ones are left out. Throws on bad values. */
export function mockOptionsFromEnv(vars: Record<string, unknown>): Partial<MockOptions> {
	const raw: Record<string, unknown> = {};
	for (const [envName, optionName] of Object.entries(ENV_NAMES)) {
		const value = vars[envName];
		if (value !== undefined && value !== null && value !== "") raw[optionName] = value;
	}
	const parsed = v.safeParse(partialMockOptionsSchema, raw);
	if (!parsed.success) throw new Error(`invalid MOCK_* settings: ${v.summarize(parsed.issues)}`);
	return parsed.output;
}
