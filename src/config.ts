// The operator's configuration (pools and tenants), validated with zod. It comes from the
// TOLLBOOTH_CONFIG var: an object in wrangler.toml, or a JSON string from .dev.vars / --var.
import * as z from "zod/mini";
import { configErrorMessage } from "./config-errors.ts";

export { configErrorMessage };

import { DEFAULT_BACKOFF, DEFAULT_MAX_ATTEMPTS } from "./core/backoff.ts";
import { type PerMinuteLimits, startingLimits } from "./core/limit-learning.ts";
import type { PoolLimits, RateLimits } from "./core/limits.ts";
import type { PoolStateOptions } from "./core/pool-state.ts";
import { PRIORITIES } from "./core/priority.ts";

const priority = z.enum(PRIORITIES as unknown as ["critical", "high", "normal", "low"]);
const positive = z.number().check(z.positive());
const positiveInt = z.int().check(z.positive());

const rateLimitsSchema = z.strictObject({
	requestsPerMinute: positive,
	tokensPerMinute: positive,
	/** Bucket capacity in requests; default: 10 seconds' worth of requestsPerMinute. */
	burstRequests: z.optional(positive),
	/** Bucket capacity in tokens; default: the whole tokensPerMinute, as the providers hold it. */
	burstTokens: z.optional(positive),
	/**
	 * "token-bucket", or "sliding-window" for a provider that counts N per window: no window of
	 * windowMs then admits more than the per-minute limits × windowMs / 60 000 (bursts ignored).
	 */
	algorithm: z._default(z.enum(["token-bucket", "sliding-window"]), "token-bucket"),
	windowMs: z._default(positiveInt, 60_000),
});

/** Headers no pool may forward from a client: credentials, framing, identity, and ones with a setting. */
const RESERVED_HEADER =
	/^(authorization|x-api-key|api-key|cookie|host|content-length|transfer-encoding|connection|te|upgrade|keep-alive|forwarded|via|true-client-ip|x-real-ip|x-client-ip|openai-organization|openai-project|anthropic-beta|openai-beta|(cf|x-forwarded|proxy|x-tollbooth)-.*)$/;

const DEFAULT_MAX_WAIT_MS = { critical: 30_000, high: 60_000, normal: 120_000, low: 300_000 };

const poolSchema = z.strictObject({
	name: z.string().check(
		z.regex(
			/^[a-z0-9][a-z0-9_-]*$/,
			"use lower-case letters, digits, '-' and '_' (it is a URL path)",
		),
		z.refine(
			(name) => name !== "admin" && name !== "mock",
			"'admin' and 'mock' are reserved paths",
		),
	),
	provider: z.enum(["openai", "anthropic", "openai-compatible"]),
	/** The provider's API root including its version path, e.g. https://api.openai.com/v1. */
	baseUrl: z.url({ protocol: /^https?$/ }),
	/** Name of the secret (wrangler secret put NAME) that holds this pool's provider API key. */
	apiKeySecret: z
		.string()
		.check(z.regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be a Worker secret name")),
	limits: z.extend(rateLimitsSchema, {
		/** A number, or "auto": start conservative and adopt the provider's advertised limit. */
		requestsPerMinute: z.union([positive, z.literal("auto")]),
		tokensPerMinute: z.union([positive, z.literal("auto")]),
		maxConcurrent: positiveInt,
		models: z._default(z.record(z.string(), rateLimitsSchema), {}),
	}),
	/** Output tokens reserved when a request gives no max_tokens. */
	defaultMaxOutputTokens: z._default(positiveInt, 4096),
	/**
	 * Longest a request may wait in the queue, per priority (or one number for all);
	 * x-max-wait-ms may shorten it. User-facing work should hear "no" sooner than batch work.
	 */
	maxWaitMs: z.pipe(
		z._default(z.union([positiveInt, z.partialRecord(priority, positiveInt)]), {}),
		z.transform((value) =>
			typeof value === "number"
				? { critical: value, high: value, normal: value, low: value }
				: { ...DEFAULT_MAX_WAIT_MS, ...value },
		),
	),
	/** Waiters in the pool's queue; beyond it the lowest-priority, newest are shed. */
	maxQueueLength: z._default(positiveInt, 1000),
	/** Waiters one tenant may have in the pool's queue (default: maxQueueLength). */
	maxQueuePerTenant: z.optional(positiveInt),
	/** No request waits longer than this behind a stream of higher-priority work. */
	agingBoundMs: z._default(positiveInt, 60_000),
	/**
	 * A lease neither released nor renewed by then is reclaimed (its holder is assumed gone). The
	 * Worker renews a lease every third of this while its answer is still coming.
	 */
	leaseTtlMs: z._default(positiveInt, 30_000),
	/**
	 * Headroom for higher classes: a class leaves the classes above it what they are likely to
	 * need over horizonMs at their recent arrival rate, and at least `floor` (a share, 0–0.5) of
	 * each of the pool's capacities (requests, tokens, slots).
	 */
	headroom: z._default(
		z.strictObject({
			floor: z._default(z.number().check(z.gte(0), z.lte(0.5)), 0),
			horizonMs: z._default(z.int().check(z.gte(0)), 1_000),
		}),
		{ floor: 0, horizonMs: 1_000 },
	),
	/** Sends of one request, counting the first, when the provider answers 429. */
	maxAttempts: z._default(z.int().check(z.gte(1), z.lte(10)), DEFAULT_MAX_ATTEMPTS),
	/** Time allowed for the provider's response headers to arrive. */
	firstByteTimeoutMs: z._default(positiveInt, 120_000),
	/** Time allowed for a whole non-streamed answer (streams have no total limit). */
	totalTimeoutMs: z._default(positiveInt, 600_000),
	/** Longest silence between two chunks of a stream before it is treated as broken. */
	streamIdleTimeoutMs: z._default(positiveInt, 60_000),
	/**
	 * Whether Worker isolates may admit requests from allowances the pool grants them while it
	 * has room and nobody waits (no round trip per request). Off: every request asks the pool,
	 * for strict priority order from the first request (see README, Allowances).
	 */
	allowances: z._default(z.boolean(), true),
	/**
	 * Where requests go when this pool is paused by the provider, failing, or full: another pool
	 * of the same API (a second key, or another OpenAI-compatible server), with model names mapped.
	 */
	fallback: z.optional(
		z.strictObject({
			pool: z.string(),
			models: z._default(z.record(z.string(), z.string()), {}),
		}),
	),
	/**
	 * Routes under /v1 that are not one of the provider's metered endpoints: "metered" passes them
	 * through at 1 request and 0 tokens; "deny" answers 404.
	 */
	passThrough: z._default(z.enum(["deny", "metered"]), "metered"),
	/** Sent as openai-organization / openai-project (OpenAI pools); a client's own are dropped. */
	organization: z.optional(z.string().check(z.minLength(1))),
	project: z.optional(z.string().check(z.minLength(1))),
	/** Values of the provider's beta header (anthropic-beta, openai-beta) that may cross; "*": any. */
	allowedBetas: z._default(z.array(z.string().check(z.minLength(1))), []),
	/** Further client headers (lower-case names) the operator lets cross to the provider as sent. */
	forwardHeaders: z._default(
		z.array(
			z.string().check(
				z.regex(/^[a-z0-9-]+$/, "a lower-case header name"),
				z.refine(
					(name) => !RESERVED_HEADER.test(name),
					"tollbooth sets or drops this header itself",
				),
			),
		),
		[],
	),
});

const sha256Hex = z
	.string()
	.check(z.regex(/^[0-9a-f]{64}$/, "must be a lower-case hex SHA-256 of the key"));

const budgetLimitsSchema = z.strictObject({
	tokensPerDay: z.optional(positiveInt),
	tokensPerMonth: z.optional(positiveInt),
	costPerDayUsd: z.optional(positive),
	costPerMonthUsd: z.optional(positive),
});

/** What a tenant may spend; windows reset at local midnight and on the 1st in `timeZone`. */
export const budgetSchema = z.strictObject({
	...budgetLimitsSchema.shape,
	/** Share of any budget (reservations counted) from which the `downgrade` map applies. */
	downgradeAt: z._default(z.number().check(z.gt(0), z.lte(1)), 0.9),
	/** Requested model → cheaper model once the downgrade applies. */
	downgrade: z._default(
		z.record(z.string().check(z.minLength(1)), z.string().check(z.minLength(1))),
		{},
	),
	/** Every end user's own budget within the tenant's. */
	perUser: z.optional(budgetLimitsSchema),
	/** Named end users' budgets, instead of perUser. */
	users: z._default(z.record(z.string().check(z.minLength(1)), budgetLimitsSchema), {}),
	/** IANA time zone of the day and month windows. */
	timeZone: z._default(
		z.string().check(z.refine(isTimeZone, "must be an IANA time zone such as Europe/Paris")),
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
export const tenantPolicySchema = z.strictObject({
	name: z.string().check(z.minLength(1), z.maxLength(64)),
	/** Pools this tenant may use, by name, or ["*"] for all. */
	pools: z.array(z.string()).check(z.minLength(1)),
	/**
	 * Models this tenant may send, by exact name; absent: any. Its budget's downgrade targets are
	 * allowed too (the same policy chose them).
	 */
	models: z.optional(z.array(z.string().check(z.minLength(1))).check(z.minLength(1))),
	defaultPriority: z._default(priority, "normal"),
	maxPriority: z._default(priority, "high"),
	/** Share of a pool against other tenants of the same priority when both have work waiting. */
	weight: z._default(positive, 1),
	/** This tenant's own limits in every pool it uses, on top of the pool's. */
	limits: z._default(
		z.strictObject({
			requestsPerMinute: z.optional(positive),
			tokensPerMinute: z.optional(positive),
			maxConcurrent: z.optional(positiveInt),
		}),
		{},
	),
	budget: z.optional(budgetSchema),
	/**
	 * Completion webhooks of this tenant's batches (README "Batch webhooks"): signed with the Worker
	 * secret named `secret`; sent to `url` unless a batch names its own (metadata.webhook_url).
	 */
	webhook: z.optional(
		z.strictObject({
			secret: z.string().check(z.regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be a Worker secret name")),
			url: z.optional(z.url({ protocol: /^https?$/ })),
		}),
	),
});

const tenantSchema = z.extend(tenantPolicySchema, {
	/** SHA-256 (hex) of each gateway key this tenant uses; keys themselves are never stored. */
	keySha256: z.array(sha256Hex).check(z.minLength(1)),
});

/** USD per million tokens; cachedInput defaults to input, cacheWrite (Anthropic) to input. */
const priceSchema = z.strictObject({
	input: z.number().check(z.gte(0)),
	cachedInput: z.optional(z.number().check(z.gte(0))),
	cacheWrite: z.optional(z.number().check(z.gte(0))),
	output: z.number().check(z.gte(0)),
});

export const configSchema = z
	.strictObject({
		pools: z.array(poolSchema).check(z.minLength(1)),
		tenants: z.array(tenantSchema).check(z.minLength(1)),
		/** Largest request body accepted, in bytes. */
		maxBodyBytes: z._default(positiveInt, 10 * 1024 * 1024),
		/** SHA-256 (hex) of each admin token for /admin/*; none: the admin API is off. */
		adminKeySha256: z._default(z.array(sha256Hex), []),
		/**
		 * Hosts batch completion webhooks may be sent to ("hooks.example.com", "127.0.0.1:8789", or
		 * "*.example.com"); none: no webhooks.
		 */
		webhookHosts: z._default(z.array(z.string().check(z.minLength(1))), []),
		/** Prices by model, for cost budgets (README "Budgets" has a starter table). */
		prices: z._default(z.record(z.string().check(z.minLength(1)), priceSchema), {}),
	})
	.check(
		z.superRefine((config, ctx) => {
			const poolNames = new Set<string>();
			config.pools.forEach((pool, i) => {
				if (poolNames.has(pool.name)) {
					ctx.addIssue({
						code: "custom",
						path: ["pools", i, "name"],
						message: `duplicate pool "${pool.name}"`,
					});
				}
				poolNames.add(pool.name);
			});
			config.pools.forEach((pool, i) => {
				for (const field of ["organization", "project"] as const) {
					if (pool[field] !== undefined && pool.provider === "anthropic") {
						ctx.addIssue({
							code: "custom",
							path: ["pools", i, field],
							message: "only OpenAI pools have an organization or project",
						});
					}
				}
			});
			config.pools.forEach((pool, i) => {
				if (!pool.fallback) return;
				const path = ["pools", i, "fallback", "pool"];
				const target = config.pools.find((candidate) => candidate.name === pool.fallback?.pool);
				if (!target) {
					ctx.addIssue({ code: "custom", path, message: `no pool named "${pool.fallback.pool}"` });
				} else if (target === pool) {
					ctx.addIssue({ code: "custom", path, message: "a pool cannot fall back to itself" });
				} else if ((target.provider === "anthropic") !== (pool.provider === "anthropic")) {
					ctx.addIssue({
						code: "custom",
						path,
						message: `"${target.name}" speaks another API (${target.provider}); a fallback must take the same requests`,
					});
				}
			});
			const keyOwners = new Map<string, string>();
			config.tenants.forEach((tenant, i) => {
				tenant.pools.forEach((name, j) => {
					if (name !== "*" && !poolNames.has(name)) {
						ctx.addIssue({
							code: "custom",
							path: ["tenants", i, "pools", j],
							message: `no pool named "${name}"`,
						});
					}
				});
				if (PRIORITIES.indexOf(tenant.defaultPriority) < PRIORITIES.indexOf(tenant.maxPriority)) {
					ctx.addIssue({
						code: "custom",
						path: ["tenants", i, "defaultPriority"],
						message: `is above maxPriority "${tenant.maxPriority}"`,
					});
				}
				tenant.keySha256.forEach((hash, j) => {
					const owner = keyOwners.get(hash);
					if (owner !== undefined) {
						ctx.addIssue({
							code: "custom",
							path: ["tenants", i, "keySha256", j],
							message: `the same key is already given to tenant "${owner}"`,
						});
					}
					keyOwners.set(hash, tenant.name);
				});
			});
		}),
	);

export type Config = z.infer<typeof configSchema>;
export type PoolConfig = Config["pools"][number];
export type TenantConfig = Config["tenants"][number];
/** A tenant as the gateway serves it: from TOLLBOOTH_CONFIG or from the runtime registry. */
export type TenantPolicy = z.infer<typeof tenantPolicySchema>;
export type Budget = z.infer<typeof budgetSchema>;
export type Price = z.infer<typeof priceSchema>;

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
	const parsed = configSchema.safeParse(value, { error: configErrorMessage });
	if (parsed.success) return { ok: true, config: parsed.data };
	const problems = parsed.error.issues.map(
		(issue) => `TOLLBOOTH_CONFIG.${issue.path.join(".") || "(root)"}: ${issue.message}`,
	);
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

function withBurst(limits: z.infer<typeof rateLimitsSchema>): RateLimits {
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
