// What the overhead, ceiling, decisions, distance and streaming scenarios run against: the Node mock
// provider on its own thread and the bench Worker (tollbooth plus its baselines, one isolate) in
// front of it, with pools whose limits are far above any load so nothing ever queues (allowances on
// and off, near and "far"), and a far pair small enough to overload.
import type { MockOptions } from "../../src/mock/provider.ts";
import { BENCH_GATEWAY_KEY, BENCH_PROVIDER_KEY, startBenchGateway } from "./bench-gateway.ts";
import type { Target } from "./http-client.ts";
import { type MockThread, startMockThread } from "./mock-thread.ts";
import { runtimeOrigin } from "./runtime-socket.ts";
import type { WranglerDev } from "./wrangler-dev.ts";

export const BENCH_WORKER = "bench/workers/bench-worker.ts";
/** The main pool's name and route prefix (allowances on, the default). */
export const BENCH_POOL = "openai";
/** Requests a minute of the "far-tight" pools, which the distance scenario overloads. */
export const TIGHT_REQUESTS_PER_MINUTE = 1_200;
/** Round trip the bench Worker adds to every call to a "far" pool: an object on another continent. */
export const DEFAULT_POOL_DELAY_MS = 80;

/**
 * direct: to the mock; passthrough: a Worker that forwards; pooled: the same with tollbooth's
 * Pool acquire and release around it; tollbooth: the whole gateway; constant: a Worker that
 * answers alone. strict: tollbooth through a pool with allowances off; far…: through pools whose
 * every call takes the added delay, with allowances (far, far-tight) and without (…-strict).
 */
export type Variant =
	| "direct"
	| "passthrough"
	| "pooled"
	| "tollbooth"
	| "constant"
	| (typeof POOL_VARIANTS)[number];

/** Variants that are tollbooth through a pool of their own name. */
const POOL_VARIANTS = ["strict", "far", "far-strict", "far-tight", "far-tight-strict"] as const;

/**
 * Where a request enters the bench Worker: wrangler's port, through wrangler's own proxy Worker (as
 * `wrangler dev` serves), or the runtime's socket behind it (as a deployed Worker is reached).
 */
export type Entrance = "wrangler" | "runtime";

/** A target's name: its variant, and its entrance when one is named ("tollbooth (runtime)"). */
export function targetName(variant: Variant, entrance?: Entrance): string {
	return entrance === undefined || variant === "direct" ? variant : `${variant} (${entrance})`;
}

export interface BenchStack {
	mock: MockThread;
	gateway: WranglerDev;
	/** The runtime's socket behind wrangler's proxy; undefined where it could not be found. */
	runtimeOrigin: string | undefined;
	/** Where a figure of what tollbooth adds is measured: the runtime's socket, when it was found. */
	deployedLike: Entrance;
	/**
	 * The same request sent one way: straight to the mock, through a Worker, or through tollbooth;
	 * entering at wrangler's port unless `entrance` says otherwise. Named by its variant, and by its
	 * entrance too ("tollbooth (runtime)") when one is given.
	 */
	target(variant: Variant, body: string, entrance?: Entrance): Target;
	stop(): Promise<void>;
}

export async function startBenchStack(
	mockOptions: Partial<MockOptions> = {},
	poolDelayMs = DEFAULT_POOL_DELAY_MS,
): Promise<BenchStack> {
	const mock = await startMockThread({
		requestsPerMinute: 1e9,
		tokensPerMinute: 1e12,
		latencyMs: 0,
		...mockOptions,
		apiKey: BENCH_PROVIDER_KEY,
	});
	const generous = { requestsPerMinute: 1e9, tokensPerMinute: 1e12, maxConcurrent: 100_000 };
	const tight = {
		requestsPerMinute: TIGHT_REQUESTS_PER_MINUTE,
		tokensPerMinute: 1e9,
		maxConcurrent: 1_000,
	};
	const pool = (name: string, limits: typeof generous) => ({
		name,
		provider: "openai" as const,
		baseUrl: `${mock.url}/openai/v1`,
		limits,
		allowances: !name.endsWith("strict"),
		// A short wait, so that overload turns callers away quickly instead of queueing for minutes.
		...(limits === tight && { maxWaitMs: 2_000 }),
	});
	const gateway = await startBenchGateway(
		[
			pool(BENCH_POOL, generous),
			...POOL_VARIANTS.map((name) => pool(name, name.includes("tight") ? tight : generous)),
		],
		{
			entry: BENCH_WORKER,
			vars: { BENCH_UPSTREAM: mock.url, BENCH_POOL_DELAY_MS: String(poolDelayMs) },
		},
	).catch(async (error: unknown) => {
		await mock.close();
		throw error;
	});
	const runtime = await runtimeOrigin(gateway);
	const chatPath = "/openai/v1/chat/completions";
	const paths: Record<Exclude<Variant, "direct">, string> = {
		passthrough: `/bench/passthrough${chatPath}`,
		pooled: `/bench/pooled${chatPath}?pool=${BENCH_POOL}`,
		tollbooth: `/${BENCH_POOL}/v1/chat/completions`,
		constant: "/bench/constant",
		...(Object.fromEntries(
			POOL_VARIANTS.map((name) => [name, `/${name}/v1/chat/completions`]),
		) as Record<(typeof POOL_VARIANTS)[number], string>),
	};
	const urlOf = (variant: Variant, entrance: Entrance): URL => {
		if (variant === "direct") return new URL(chatPath, mock.url);
		if (entrance === "runtime" && runtime === undefined) {
			throw new Error("the runtime's socket behind wrangler's proxy was not found");
		}
		return new URL(paths[variant], entrance === "runtime" ? runtime : gateway.origin);
	};
	return {
		mock,
		gateway,
		runtimeOrigin: runtime,
		deployedLike: runtime === undefined ? "wrangler" : "runtime",
		target(variant, body, entrance) {
			const throughTollbooth =
				variant === "tollbooth" || (POOL_VARIANTS as readonly string[]).includes(variant);
			const key = throughTollbooth ? BENCH_GATEWAY_KEY : BENCH_PROVIDER_KEY;
			return {
				name: targetName(variant, entrance),
				url: urlOf(variant, entrance ?? "wrangler"),
				method: "POST",
				headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
				body,
			};
		},
		async stop() {
			await gateway.stop();
			await mock.close();
		},
	};
}
