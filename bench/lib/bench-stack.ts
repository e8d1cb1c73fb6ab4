// What the overhead, ceiling, decisions and streaming scenarios run against: the Node mock provider
// on its own thread and the bench Worker (tollbooth plus its baselines, one isolate) in front of it,
// with one pool whose limits are far above any load so nothing ever queues.
import type { MockOptions } from "../../src/mock/provider.ts";
import { BENCH_GATEWAY_KEY, BENCH_PROVIDER_KEY, startBenchGateway } from "./bench-gateway.ts";
import type { Target } from "./http-client.ts";
import { type MockThread, startMockThread } from "./mock-thread.ts";
import type { WranglerDev } from "./wrangler-dev.ts";

export const BENCH_WORKER = "bench/workers/bench-worker.ts";
/** The one pool's name and route prefix. */
export const BENCH_POOL = "openai";

/**
 * direct: to the mock; passthrough: a Worker that forwards; pooled: the same with tollbooth's
 * Pool acquire and release around it; tollbooth: the whole gateway; constant: a Worker that
 * answers alone.
 */
export type Variant = "direct" | "passthrough" | "pooled" | "tollbooth" | "constant";

export interface BenchStack {
	mock: MockThread;
	gateway: WranglerDev;
	/** The same request sent one way: straight to the mock, through a Worker, or through tollbooth. */
	target(variant: Variant, body: string): Target;
	stop(): Promise<void>;
}

export async function startBenchStack(mockOptions: Partial<MockOptions> = {}): Promise<BenchStack> {
	const mock = await startMockThread({
		requestsPerMinute: 1e9,
		tokensPerMinute: 1e12,
		latencyMs: 0,
		...mockOptions,
		apiKey: BENCH_PROVIDER_KEY,
	});
	const gateway = await startBenchGateway(
		[
			{
				name: BENCH_POOL,
				provider: "openai",
				baseUrl: `${mock.url}/openai/v1`,
				limits: { requestsPerMinute: 1e9, tokensPerMinute: 1e12, maxConcurrent: 100_000 },
			},
		],
		{ entry: BENCH_WORKER, vars: { BENCH_UPSTREAM: mock.url } },
	).catch(async (error: unknown) => {
		await mock.close();
		throw error;
	});
	const chatPath = "/openai/v1/chat/completions";
	const urls: Record<Variant, URL> = {
		direct: new URL(chatPath, mock.url),
		passthrough: new URL(`/bench/passthrough${chatPath}`, gateway.origin),
		pooled: new URL(`/bench/pooled${chatPath}?pool=${BENCH_POOL}`, gateway.origin),
		tollbooth: new URL(`/${BENCH_POOL}/v1/chat/completions`, gateway.origin),
		constant: new URL("/bench/constant", gateway.origin),
	};
	return {
		mock,
		gateway,
		target(variant, body) {
			const key = variant === "tollbooth" ? BENCH_GATEWAY_KEY : BENCH_PROVIDER_KEY;
			return {
				name: variant,
				url: urls[variant],
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
