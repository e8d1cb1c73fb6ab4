// A gateway for benchmarks: wrangler dev with the given pools in front of a provider outside the
// Worker (the Node mock), one bench tenant, and the built-in mock switched off.
import { createHash } from "node:crypto";
import type * as v from "valibot";
import type { configSchema } from "../../src/config.ts";
import { startWranglerDev, type WranglerDev } from "./wrangler-dev.ts";

export type PoolSpec = Omit<v.InferInput<typeof configSchema>["pools"][number], "apiKeySecret">;

export const BENCH_GATEWAY_KEY = "tb-bench-key";
/** The key of the bench tenant with token and cost budgets far above any bench's load. */
export const BENCH_BUDGETED_KEY = "tb-bench-budgeted-key";
/** The provider key every bench pool sends; start the mock with `apiKey: BENCH_PROVIDER_KEY`. */
export const BENCH_PROVIDER_KEY = "bench-provider-key";
const PROVIDER_KEY_SECRET = "BENCH_PROVIDER_KEY";
/** The admin token of every bench gateway, for /admin/* (see readAdmin). */
export const BENCH_ADMIN_KEY = "tb-bench-admin-key";
/** The chat request most scenarios send: small, so they measure the path, not the body. */
export const SMALL_CHAT_BODY = JSON.stringify({
	model: "gpt-4o-mini",
	messages: [{ role: "user", content: "Say hello" }],
	max_tokens: 16,
});

function sha256Hex(text: string): string {
	return createHash("sha256").update(text).digest("hex");
}

export function benchConfig(pools: readonly PoolSpec[]): object {
	return {
		pools: pools.map((pool) => ({ ...pool, apiKeySecret: PROVIDER_KEY_SECRET })),
		tenants: [
			{
				name: "bench",
				keySha256: [sha256Hex(BENCH_GATEWAY_KEY)],
				pools: ["*"],
				defaultPriority: "normal",
				maxPriority: "critical",
			},
			{
				name: "bench-budgeted",
				keySha256: [sha256Hex(BENCH_BUDGETED_KEY)],
				pools: ["*"],
				defaultPriority: "normal",
				maxPriority: "critical",
				budget: { tokensPerDay: 1e12, costPerDayUsd: 1e6 },
			},
		],
		// gpt-4o-mini's list price (README "Budgets"), for the budgeted tenant's cost budget.
		prices: { "gpt-4o-mini": { input: 0.15, cachedInput: 0.075, output: 0.6 } },
		adminKeySha256: [sha256Hex(BENCH_ADMIN_KEY)],
	};
}

export interface BenchGatewayOptions {
	/** A bench Worker wrapping tollbooth (bench/workers/bench-worker.ts) instead of tollbooth alone. */
	entry?: string;
	/** More vars for the Worker, e.g. the bench Worker's BENCH_UPSTREAM. */
	vars?: Record<string, string>;
}

export function startBenchGateway(
	pools: readonly PoolSpec[],
	options: BenchGatewayOptions = {},
): Promise<WranglerDev> {
	return startWranglerDev({
		config: benchConfig(pools),
		vars: { ...options.vars, [PROVIDER_KEY_SECRET]: BENCH_PROVIDER_KEY },
		// The production entry, without the dev mock, unless a bench Worker wraps it.
		entry: options.entry ?? "src/index.ts",
	});
}

/** GET /admin/<path> of a bench gateway, e.g. "pools/openai" for a pool's live state. */
export async function readAdmin(gateway: WranglerDev, path: string): Promise<unknown> {
	const response = await fetch(`${gateway.origin}/admin/${path}`, {
		headers: { authorization: `Bearer ${BENCH_ADMIN_KEY}` },
	});
	if (!response.ok)
		throw new Error(`GET /admin/${path}: ${response.status} ${await response.text()}`);
	return response.json();
}
