// The operator's configuration (pools and tenants), validated with valibot. It comes from the
// TOLLBOOTH_CONFIG var: an object in wrangler.toml, or a JSON string from .dev.vars / --var.
import * as v from "valibot";
import {
	completeDespite,
	described,
	issuePath,
	record,
	strictObject,
	VALIDATION,
} from "./config-errors.ts";

/** For the admin API's bodies, validated as the configuration is (gateway imports only config.ts). */
export { issuePath, strictObject, VALIDATION };

import { DEFAULT_BACKOFF, DEFAULT_MAX_ATTEMPTS } from "./core/backoff.ts";
import { type PerMinuteLimits, startingLimits } from "./core/limit-learning.ts";
import type { PoolLimits, RateLimits } from "./core/limits.ts";
import type { PoolStateOptions } from "./core/pool-state.ts";
import { PRIORITIES } from "./core/priority.ts";

const priority = v.picklist(PRIORITIES);
/** A finite number (JSON's 1e999 parses to Infinity). */
const finite = v.pipe(v.number(), v.finite());
const int = v.pipe(v.number(), v.safeInteger());
const positive = v.pipe(finite, v.gtValue(0));
const positiveInt = v.pipe(int, v.gtValue(0));
const nonEmpty = v.pipe(v.string(), v.minLength(1));
const secretName = v.pipe(
	v.string(),
	v.regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be a Worker secret name"),
);

function isHttpUrl(value: string): boolean {
	return URL.canParse(value) && /^https?:$/.test(new URL(value).protocol);
}

const httpUrl = v.pipe(
	v.string(),
	v.check(isHttpUrl, (issue) => `must be an http(s) URL, got ${described(issue.input)}`),
	v.metadata({ format: "uri" }),
);

const rateLimitsSchema = strictObject({
	requestsPerMinute: positive,
	tokensPerMinute: positive,
	/** Bucket capacity in requests; default: 10 seconds' worth of requestsPerMinute. */
	burstRequests: v.optional(positive),
	/** Bucket capacity in tokens; default: the whole tokensPerMinute, as the providers hold it. */
	burstTokens: v.optional(positive),
	/**
	 * "token-bucket", or "sliding-window" for a provider that counts N per window: no window of
	 * windowMs then admits more than the per-minute limits × windowMs / 60 000 (bursts ignored).
	 */
	algorithm: v.optional(v.picklist(["token-bucket", "sliding-window"]), "token-bucket"),
	windowMs: v.optional(positiveInt, 60_000),
});

/** Headers no pool may forward from a client: credentials, framing, identity, and ones with a setting. */
const RESERVED_HEADER =
	/^(authorization|x-api-key|api-key|cookie|host|content-length|transfer-encoding|connection|te|upgrade|keep-alive|forwarded|via|true-client-ip|x-real-ip|x-client-ip|openai-organization|openai-project|anthropic-beta|openai-beta|(cf|x-forwarded|proxy|x-tollbooth)-.*)$/;

const DEFAULT_MAX_WAIT_MS = { critical: 30_000, high: 60_000, normal: 120_000, low: 300_000 };

const poolSchema = strictObject({
	name: v.pipe(
		v.string(),
		v.regex(
			/^[a-z0-9][a-z0-9_-]*$/,
			"use lower-case letters, digits, '-' and '_' (it is a URL path)",
		),
		v.check((name) => name !== "admin" && name !== "mock", "'admin' and 'mock' are reserved paths"),
	),
	provider: v.picklist(["openai", "anthropic", "openai-compatible"]),
	/** The provider's API root including its version path, e.g. https://api.openai.com/v1. */
	baseUrl: httpUrl,
	/** Name of the secret (wrangler secret put NAME) that holds this pool's provider API key. */
	apiKeySecret: secretName,
	limits: strictObject({
		...rateLimitsSchema.entries,
		/** A number, or "auto": start conservative and adopt the provider's advertised limit. */
		requestsPerMinute: v.union([positive, v.literal("auto")]),
		tokensPerMinute: v.union([positive, v.literal("auto")]),
		maxConcurrent: positiveInt,
		models: v.optional(record(v.string(), rateLimitsSchema), {}),
	}),
	/** Output tokens reserved when a request gives no max_tokens. */
	defaultMaxOutputTokens: v.optional(positiveInt, 4096),
	/**
	 * Longest a request may wait in the queue, per priority (or one number for all);
	 * x-max-wait-ms may shorten it. User-facing work should hear "no" sooner than batch work.
	 */
	maxWaitMs: v.pipe(
		v.optional(
			v.union([
				positiveInt,
				strictObject({
					critical: v.optional(positiveInt),
					high: v.optional(positiveInt),
					normal: v.optional(positiveInt),
					low: v.optional(positiveInt),
				}),
			]),
			{},
		),
		v.transform((value) =>
			typeof value === "number"
				? { critical: value, high: value, normal: value, low: value }
				: { ...DEFAULT_MAX_WAIT_MS, ...value },
		),
	),
	/** Waiters in the pool's queue; beyond it the lowest-priority, newest are shed. */
	maxQueueLength: v.optional(positiveInt, 1000),
	/** Waiters one tenant may have in the pool's queue (default: maxQueueLength). */
	maxQueuePerTenant: v.optional(positiveInt),
	/** No request waits longer than this behind a stream of higher-priority work. */
	agingBoundMs: v.optional(positiveInt, 60_000),
	/**
	 * A lease neither released nor renewed by then is reclaimed (its holder is assumed gone). The
	 * Worker renews a lease every third of this while its answer is still coming.
	 */
	leaseTtlMs: v.optional(positiveInt, 30_000),
	/**
	 * Headroom for higher classes: a class leaves the classes above it what they are likely to
	 * need over horizonMs at their recent arrival rate, and at least `floor` (a share, 0–0.5) of
	 * each of the pool's capacities (requests, tokens, slots).
	 */
	headroom: v.optional(
		strictObject({
			floor: v.optional(v.pipe(finite, v.minValue(0), v.maxValue(0.5)), 0),
			horizonMs: v.optional(v.pipe(int, v.minValue(0)), 1_000),
		}),
		{},
	),
	/** Sends of one request, counting the first, when the provider answers 429. */
	maxAttempts: v.optional(v.pipe(int, v.minValue(1), v.maxValue(10)), DEFAULT_MAX_ATTEMPTS),
	/** Time allowed for the provider's response headers to arrive. */
	firstByteTimeoutMs: v.optional(positiveInt, 120_000),
	/** Time allowed for a whole non-streamed answer (streams have no total limit). */
	totalTimeoutMs: v.optional(positiveInt, 600_000),
	/** Longest silence between two chunks of a stream before it is treated as broken. */
	streamIdleTimeoutMs: v.optional(positiveInt, 60_000),
	/**
	 * Whether Worker isolates may admit requests from allowances the pool grants them while it
	 * has room and nobody waits (no round trip per request). Off: every request asks the pool,
	 * for strict priority order from the first request (see README, Allowances).
	 */
	allowances: v.optional(v.boolean(), true),
	/**
	 * Where requests go when this pool is paused by the provider, failing, or full: another pool
	 * of the same API (a second key, or another OpenAI-compatible server), with model names mapped.
	 */
	fallback: v.optional(
		strictObject({
			pool: v.string(),
			models: v.optional(record(v.string(), v.string()), {}),
		}),
	),
	/**
	 * Routes under /v1 that are not one of the provider's metered endpoints: "metered" passes them
	 * through at 1 request and 0 tokens; "deny" answers 404.
	 */
	passThrough: v.optional(v.picklist(["deny", "metered"]), "metered"),
	/** Sent as openai-organization / openai-project (OpenAI pools); a client's own are dropped. */
	organization: v.optional(nonEmpty),
	project: v.optional(nonEmpty),
	/** Values of the provider's beta header (anthropic-beta, openai-beta) that may cross; "*": any. */
	allowedBetas: v.optional(v.array(nonEmpty), []),
	/** Further client headers (lower-case names) the operator lets cross to the provider as sent. */
	forwardHeaders: v.optional(
		v.array(
			v.pipe(
				v.string(),
				v.regex(/^[a-z0-9-]+$/, "a lower-case header name"),
				v.check(
					(name) => !RESERVED_HEADER.test(name),
					"tollbooth sets or drops this header itself",
				),
			),
		),
		[],
	),
});

const sha256Hex = v.pipe(
	v.string(),
	v.regex(/^[0-9a-f]{64}$/, "must be a lower-case hex SHA-256 of the key"),
);

const budgetLimitsEntries = {
	tokensPerDay: v.optional(positiveInt),
	tokensPerMonth: v.optional(positiveInt),
	costPerDayUsd: v.optional(positive),
	costPerMonthUsd: v.optional(positive),
};

/** What a tenant may spend; windows reset at local midnight and on the 1st in `timeZone`. */
export const budgetSchema = strictObject({
	...budgetLimitsEntries,
	/** Share of any budget (reservations counted) from which the `downgrade` map applies. */
	downgradeAt: v.optional(v.pipe(finite, v.gtValue(0), v.maxValue(1)), 0.9),
	/** Requested model → cheaper model once the downgrade applies. */
	downgrade: v.optional(record(nonEmpty, nonEmpty), {}),
	/** Every end user's own budget within the tenant's. */
	perUser: v.optional(strictObject(budgetLimitsEntries)),
	/** Named end users' budgets, instead of perUser. */
	users: v.optional(record(nonEmpty, strictObject(budgetLimitsEntries)), {}),
	/** IANA time zone of the day and month windows. */
	timeZone: v.optional(
		v.pipe(v.string(), v.check(isTimeZone, "must be an IANA time zone such as Europe/Paris")),
		"UTC",
	),
});

function isTimeZone(name: string): boolean {
	try {
		new Intl.DateTimeFormat("en-US", { timeZone: name });
		return true;
	} catch {
		return false;
	}
}

/** A tenant's policy, the same in TOLLBOOTH_CONFIG and in the admin API. */
export const tenantPolicySchema = strictObject({
	name: v.pipe(v.string(), v.minLength(1), v.maxLength(64)),
	/** Pools this tenant may use, by name, or ["*"] for all. */
	pools: v.pipe(v.array(v.string()), v.minLength(1)),
	/**
	 * Models this tenant may send, by exact name; absent: any. Its budget's downgrade targets are
	 * allowed too (the same policy chose them).
	 */
	models: v.optional(v.pipe(v.array(nonEmpty), v.minLength(1))),
	defaultPriority: v.optional(priority, "normal"),
	maxPriority: v.optional(priority, "high"),
	/** Share of a pool against other tenants of the same priority when both have work waiting. */
	weight: v.optional(positive, 1),
	/** This tenant's own limits in every pool it uses, on top of the pool's. */
	limits: v.optional(
		strictObject({
			requestsPerMinute: v.optional(positive),
			tokensPerMinute: v.optional(positive),
			maxConcurrent: v.optional(positiveInt),
		}),
		{},
	),
	budget: v.optional(budgetSchema),
	/**
	 * Completion webhooks of this tenant's batches (README "Batch webhooks"): signed with the Worker
	 * secret named `secret`; sent to `url` unless a batch names its own (metadata.webhook_url).
	 */
	webhook: v.optional(strictObject({ secret: secretName, url: v.optional(httpUrl) })),
});

const tenantSchema = strictObject({
	...tenantPolicySchema.entries,
	/** SHA-256 (hex) of each gateway key this tenant uses; keys themselves are never stored. */
	keySha256: v.pipe(v.array(sha256Hex), v.minLength(1)),
});

const price = v.pipe(finite, v.minValue(0));
/** USD per million tokens; cachedInput defaults to input, cacheWrite (Anthropic) to input. */
const priceSchema = strictObject({
	input: price,
	cachedInput: v.optional(price),
	cacheWrite: v.optional(price),
	output: price,
});

export const configSchema = strictObject({
	pools: v.pipe(v.array(poolSchema), v.minLength(1)),
	tenants: v.pipe(v.array(tenantSchema), v.minLength(1)),
	/** Largest request body accepted, in bytes. */
	maxBodyBytes: v.optional(positiveInt, 10 * 1024 * 1024),
	/** SHA-256 (hex) of each admin token for /admin/*; none: the admin API is off. */
	adminKeySha256: v.optional(v.array(sha256Hex), []),
	/**
	 * Hosts batch completion webhooks may be sent to ("hooks.example.com", "127.0.0.1:8789", or
	 * "*.example.com"); none: no webhooks.
	 */
	webhookHosts: v.optional(v.array(nonEmpty), []),
	/** Prices by model, for cost budgets (README "Budgets" has a starter table). */
	prices: v.optional(record(nonEmpty, priceSchema), {}),
});

/** What only the whole configuration can tell: names and keys that clash or point nowhere. */
function crossFieldIssues(
	config: Config,
	addIssue: (path: (string | number)[], message: string) => void,
): void {
	const poolNames = new Set<string>();
	config.pools.forEach((pool, i) => {
		if (poolNames.has(pool.name)) addIssue(["pools", i, "name"], `duplicate pool "${pool.name}"`);
		poolNames.add(pool.name);
	});
	config.pools.forEach((pool, i) => {
		for (const field of ["organization", "project"] as const) {
			if (pool[field] !== undefined && pool.provider === "anthropic") {
				addIssue(["pools", i, field], "only OpenAI pools have an organization or project");
			}
		}
	});
	config.pools.forEach((pool, i) => {
		if (!pool.fallback) return;
		const path = ["pools", i, "fallback", "pool"];
		const target = config.pools.find((candidate) => candidate.name === pool.fallback?.pool);
		if (!target) {
			addIssue(path, `no pool named "${pool.fallback.pool}"`);
		} else if (target === pool) {
			addIssue(path, "a pool cannot fall back to itself");
		} else if ((target.provider === "anthropic") !== (pool.provider === "anthropic")) {
			addIssue(
				path,
				`"${target.name}" speaks another API (${target.provider}); a fallback must take the same requests`,
			);
		}
	});
	const keyOwners = new Map<string, string>();
	config.tenants.forEach((tenant, i) => {
		tenantPolicyIssues(tenant, config, (path, message) =>
			addIssue(["tenants", i, ...path], message),
		);
		tenant.keySha256.forEach((hash, j) => {
			const owner = keyOwners.get(hash);
			if (owner !== undefined) {
				addIssue(
					["tenants", i, "keySha256", j],
					`the same key is already given to tenant "${owner}"`,
				);
			}
			keyOwners.set(hash, tenant.name);
		});
	});
}

/**
 * What a tenant's policy needs beyond its schema, in TOLLBOOTH_CONFIG and the admin API alike:
 * pools that exist, and a default priority not above its maximum.
 */
export function tenantPolicyIssues(
	tenant: TenantPolicy,
	config: Pick<Config, "pools">,
	addIssue: (path: (string | number)[], message: string) => void,
): void {
	tenant.pools.forEach((name, j) => {
		if (name !== "*" && !config.pools.some((pool) => pool.name === name)) {
			addIssue(["pools", j], `no pool named "${name}"`);
		}
	});
	if (PRIORITIES.indexOf(tenant.defaultPriority) < PRIORITIES.indexOf(tenant.maxPriority)) {
		addIssue(["defaultPriority"], `is above maxPriority "${tenant.maxPriority}"`);
	}
}

export type Config = v.InferOutput<typeof configSchema>;
export type PoolConfig = Config["pools"][number];
export type TenantConfig = Config["tenants"][number];
/** A tenant as the gateway serves it: from TOLLBOOTH_CONFIG or from the runtime registry. */
export type TenantPolicy = v.InferOutput<typeof tenantPolicySchema>;
export type Budget = v.InferOutput<typeof budgetSchema>;
export type Price = v.InferOutput<typeof priceSchema>;

export type ConfigResult = { ok: true; config: Config } | { ok: false; message: string };

/** Parses the raw TOLLBOOTH_CONFIG value; the message names every bad field and what is wrong. */
export function parseConfig(raw: unknown): ConfigResult {
	let value = raw;
	if (typeof raw === "string") {
		try {
			value = JSON.parse(raw);
		} catch (error) {
			return {
				ok: false,
				message: `TOLLBOOTH_CONFIG is not valid JSON: ${(error as Error).message}`,
			};
		}
	}
	if (value === undefined) {
		return { ok: false, message: "TOLLBOOTH_CONFIG is not set (see README, Configuration)" };
	}
	const parsed = v.safeParse(configSchema, value, VALIDATION);
	const problems = (parsed.issues ?? []).map(
		(issue) => `TOLLBOOTH_CONFIG.${issuePath(issue).join(".") || "(root)"}: ${issue.message}`,
	);
	// Values out of range and unknown keys leave the configuration whole: check it anyway.
	if (completeDespite(parsed.issues)) {
		crossFieldIssues(parsed.output as Config, (path, message) => {
			problems.push(`TOLLBOOTH_CONFIG.${path.join(".")}: ${message}`);
		});
	}
	if (parsed.success && problems.length === 0) return { ok: true, config: parsed.output };
	return { ok: false, message: `Invalid configuration: ${problems.join("; ")}` };
}

/** Default request burst: 10 seconds' worth of requestsPerMinute. */
const REQUEST_BURST_SECONDS = 10;

/**
 * The pool's limits in the core's terms, with bursts defaulted: the configured per-minute limits,
 * or the ones learned from the provider (`learned`), or for "auto" the conservative start.
 */
export function poolLimits(pool: PoolConfig, learned: Partial<PerMinuteLimits> = {}): PoolLimits {
	const start = startingLimits(pool.limits);
	const requestsPerMinute = learned.requestsPerMinute ?? start.requestsPerMinute;
	const tokensPerMinute = learned.tokensPerMinute ?? start.tokensPerMinute;
	// Until the provider's first answer, an "auto" limit's bucket holds its whole (small) minute,
	// so that one ordinary request still fits.
	const stillGuessing = (configured: number | "auto", learnedValue?: number) =>
		configured === "auto" && learnedValue === undefined;
	const perMinute = {
		requestsPerMinute,
		tokensPerMinute,
		algorithm: pool.limits.algorithm,
		windowMs: pool.limits.windowMs,
		burstRequests:
			pool.limits.burstRequests ??
			(stillGuessing(pool.limits.requestsPerMinute, learned.requestsPerMinute)
				? requestsPerMinute
				: undefined),
		burstTokens:
			pool.limits.burstTokens ??
			(stillGuessing(pool.limits.tokensPerMinute, learned.tokensPerMinute)
				? tokensPerMinute
				: undefined),
	};
	const models = Object.fromEntries(
		Object.entries(pool.limits.models).map(([model, limits]) => [model, withBurst(limits)]),
	);
	return { ...withBurst(perMinute), maxConcurrent: pool.limits.maxConcurrent, models };
}

function withBurst(limits: v.InferOutput<typeof rateLimitsSchema>): RateLimits {
	return {
		requestsPerMinute: limits.requestsPerMinute,
		tokensPerMinute: limits.tokensPerMinute,
		algorithm: limits.algorithm,
		windowMs: limits.windowMs,
		burstRequests:
			limits.burstRequests ?? Math.max(1, (limits.requestsPerMinute * REQUEST_BURST_SECONDS) / 60),
		// A full minute of tokens, as the providers' own buckets hold: any request the provider
		// would take (one as large as its whole per-minute limit) fits the bucket.
		burstTokens: limits.burstTokens ?? limits.tokensPerMinute,
	};
}

/** How long an isolate may spend an allowance: short, so a queue that forms soon finds them gone. */
export const ALLOWANCE_SPEND_WINDOW_MS = 1_000;

/** Everything the pool's core state machine needs, from its configuration and the tenants'. */
export function poolStateOptions(pool: PoolConfig, tenants: TenantConfig[]): PoolStateOptions {
	return {
		scheduler: {
			leaseTtlMs: pool.leaseTtlMs,
			maxQueueLength: pool.maxQueueLength,
			maxQueuePerTenant: pool.maxQueuePerTenant ?? pool.maxQueueLength,
			maxWaitMsByPriority: pool.maxWaitMs,
			agingBoundMs: pool.agingBoundMs,
			tenants: tenantPolicies(tenants),
			headroom: pool.headroom,
		},
		configuredLimits: pool.limits,
		limitsFor: (learned) => poolLimits(pool, learned),
		maxAttempts: pool.maxAttempts,
		backoff: DEFAULT_BACKOFF,
		...(pool.allowances && {
			allowances: { spendWindowMs: ALLOWANCE_SPEND_WINDOW_MS, reclaimAfterMs: pool.leaseTtlMs },
		}),
	};
}

/** Each tenant's weight and own limits, as a pool's scheduler takes them. */
export function tenantPolicies(
	tenants: Pick<TenantPolicy, "name" | "weight" | "limits">[],
): PoolStateOptions["scheduler"]["tenants"] {
	return Object.fromEntries(
		tenants.map((tenant) => [tenant.name, { weight: tenant.weight, ...tenant.limits }]),
	);
}

const parsedByRaw = new WeakMap<object, ConfigResult>();
const parsedByString = new Map<string, ConfigResult>();

/** Parses once per isolate for a given raw value (env vars do not change while it lives). */
export function loadConfig(raw: unknown): ConfigResult {
	if (typeof raw === "object" && raw !== null) {
		let result = parsedByRaw.get(raw);
		if (!result) {
			result = parseConfig(raw);
			parsedByRaw.set(raw, result);
		}
		return result;
	}
	const key = String(raw);
	let result = parsedByString.get(key);
	if (!result) {
		result = parseConfig(raw);
		parsedByString.set(key, result);
	}
	return result;
}
