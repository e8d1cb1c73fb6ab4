// A bench-only Worker: tollbooth itself and the baselines it is measured against, in one isolate of
// one workerd, so every variant shares the runtime. Everything outside /bench/ is tollbooth:
//   /bench/constant        answers a constant chat completion (the runtime's own ceiling)
//   /bench/passthrough/*   forwards to BENCH_UPSTREAM + * and relays the answer, no logic
//   /bench/pooled/*        the same with only tollbooth's Pool round trips around it: acquire on
//                          ?pool=, forward, release after the answer (what the Pool alone adds)
//   /bench/decisions       loops acquire + release on one Pool object for ?ms= milliseconds
//   /bench/rpc-costs       mean time of ?n= sequential status() calls (on one stub, and each on a
//                          stub of its own), acquire() and release() calls
//   /bench/storage-stats   the Pool object's storageStats()
//   /bench/pool-calls      calls tollbooth made to each Pool object since the last read (?reset=1)
//   /bench/gateway-loop    sends this request's body ?n= times, one after another, through
//                          tollbooth's app with an in-memory provider: its CPU with no I/O waits
// tollbooth's calls to a Pool named "far…" take BENCH_POOL_DELAY_MS longer, half each way: an
// object on another continent.
import tollbooth, { Batch, Pool, TenantBudget, TenantRegistry } from "tollbooth-worker";

export { Batch, Pool, TenantBudget, TenantRegistry };

/** What the bench calls on the Pool object (src/durable/pool.ts), in the shapes it uses. */
interface PoolStub {
	acquire(request: {
		ticketId: string;
		tenant: string;
		model: string;
		priority: "normal";
		tokens: number;
		maxWaitMs: number;
	}): Promise<{ kind: string }>;
	release(ticketId: string, actualTokens?: number): Promise<unknown>;
	/** Reads only: the round trip of an RPC that writes nothing. */
	status(): Promise<unknown>;
	storageStats(): Promise<{ writes: number; rowsWritten: number }>;
}

interface PoolNamespace {
	getByName(name: string): PoolStub;
}

interface BenchEnv {
	POOL: PoolNamespace;
	/** The provider's origin, for /bench/passthrough. */
	BENCH_UPSTREAM: string;
	/** Round trip added to every call to a Pool whose name starts with "far". */
	BENCH_POOL_DELAY_MS?: string;
}

/** Calls to each Pool object made by tollbooth in this isolate (the bench's own are not counted). */
const poolCalls: Record<string, number> = {};

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/**
 * The Pool namespace as tollbooth sees it in the bench: every call counted, and a call to a "far"
 * pool delayed by `delayMs`, half on the way there and half on the way back.
 */
function benchNamespace(namespace: PoolNamespace, delayMs: number): PoolNamespace {
	return {
		getByName(name: string): PoolStub {
			const stub = namespace.getByName(name) as unknown as Record<string, unknown>;
			const pool = name.split("/", 1)[0] as string;
			const halfMs = pool.startsWith("far") ? delayMs / 2 : 0;
			return new Proxy(stub, {
				get(target, method) {
					const value = target[method as string];
					if (typeof value !== "function" || typeof method !== "string") return value;
					return async (...args: unknown[]) => {
						poolCalls[pool] = (poolCalls[pool] ?? 0) + 1;
						if (halfMs > 0) await sleep(halfMs);
						// An RPC method stub has no .apply of its own: call it as a method of its stub.
						const result = await (target[method] as (...a: unknown[]) => Promise<unknown>)(...args);
						if (halfMs > 0) await sleep(halfMs);
						return result;
					};
				},
			}) as unknown as PoolStub;
		},
	};
}

/** The same shape and size as the mock provider's answer to the bench's chat request. */
const CONSTANT_ANSWER = JSON.stringify({
	id: "chatcmpl-0123456789abcdef0123456789abcdef",
	object: "chat.completion",
	created: 1_795_315_192,
	model: "gpt-4o-mini",
	system_fingerprint: "fp_mock",
	choices: [
		{
			index: 0,
			message: {
				role: "assistant",
				content: "the fox ran far and saw one red owl fly off now the fox ran far",
				refusal: null,
				annotations: [],
			},
			logprobs: null,
			finish_reason: "length",
		},
	],
	usage: {
		prompt_tokens: 3,
		completion_tokens: 16,
		total_tokens: 19,
		prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
		completion_tokens_details: {
			reasoning_tokens: 0,
			audio_tokens: 0,
			accepted_prediction_tokens: 0,
			rejected_prediction_tokens: 0,
		},
	},
	service_tier: "default",
});

/**
 * `n` copies of `request` through tollbooth, one after another, while the provider (any URL under
 * BENCH_UPSTREAM) answers from memory: the gateway's own CPU, with no I/O to wait for. tollbooth
 * looks the global fetch up on each call, so it is swapped for the loop (run it alone).
 */
async function gatewayLoop(request: Request, env: BenchEnv, ctx: Context, n: number) {
	const body = await request.text();
	const networkFetch = globalThis.fetch;
	globalThis.fetch = (input, init) =>
		String(input instanceof Request ? input.url : input).startsWith(env.BENCH_UPSTREAM)
			? Promise.resolve(
					new Response(CONSTANT_ANSWER, { headers: { "content-type": "application/json" } }),
				)
			: networkFetch(input, init);
	try {
		for (let index = 0; index < n; index++) {
			// bench-stack's pool "openai", whose baseUrl is under BENCH_UPSTREAM.
			const copy = new Request(new URL("/openai/v1/chat/completions", request.url), {
				method: "POST",
				headers: request.headers,
				body,
			});
			const answer = await tollbooth.fetch(copy, env, ctx);
			const text = await answer.text();
			if (answer.status !== 200) return new Response(text, { status: answer.status });
		}
	} finally {
		globalThis.fetch = networkFetch;
	}
	return Response.json({ n });
}

const PASSTHROUGH_PREFIX = "/bench/passthrough";
const POOLED_PREFIX = "/bench/pooled";

interface Context {
	waitUntil(promise: Promise<unknown>): void;
}

/** acquire, forward, release in the background: tollbooth's Pool traffic without its gateway. */
async function pooled(request: Request, env: BenchEnv, ctx: Context, url: URL): Promise<Response> {
	const pool = url.searchParams.get("pool") ?? "";
	const stub = env.POOL.getByName(pool);
	const ask = benchAsk();
	const admission = await stub.acquire(ask);
	if (admission.kind !== "admitted") return new Response(admission.kind, { status: 503 });
	const path = url.pathname.slice(POOLED_PREFIX.length);
	const answer = await fetch(new Request(env.BENCH_UPSTREAM + path, request));
	const text = await answer.text();
	ctx.waitUntil(stub.release(ask.ticketId, 1));
	return new Response(text, answer);
}

function benchAsk() {
	return {
		ticketId: crypto.randomUUID(),
		tenant: "bench",
		model: "gpt-4o-mini",
		priority: "normal",
		tokens: 1,
		maxWaitMs: 1_000,
	} as const;
}

/**
 * The mean wall time of each kind of call, `n` of each in turn: status() shows what a bare RPC
 * costs (and what a new stub adds, as each request of the gateway makes one), acquire() and
 * release() add the Pool's decision and its storage write.
 */
async function rpcCosts(env: BenchEnv, pool: string, n: number): Promise<Response> {
	const stub = env.POOL.getByName(pool);
	const tickets: string[] = [];
	const timed = async (call: (index: number) => Promise<unknown>) => {
		const startedMs = performance.now();
		for (let index = 0; index < n; index++) await call(index);
		return (performance.now() - startedMs) / n;
	};
	const statusMs = await timed(() => stub.status());
	const freshStubStatusMs = await timed(() => env.POOL.getByName(pool).status());
	const acquireMs = await timed(async () => {
		const ask = benchAsk();
		tickets.push(ask.ticketId);
		await stub.acquire(ask);
	});
	const releaseMs = await timed((index) => stub.release(tickets[index] ?? "", 1));
	return Response.json({ n, statusMs, freshStubStatusMs, acquireMs, releaseMs });
}

/** Sequential acquire + release pairs on one Pool until `ms` have passed; counts what it got. */
async function decisions(env: BenchEnv, pool: string, ms: number): Promise<Response> {
	const stub = env.POOL.getByName(pool);
	const startedMs = Date.now();
	let admitted = 0;
	let refused = 0;
	// Date.now() moves on at each I/O, so at each RPC's return.
	while (Date.now() - startedMs < ms) {
		const ask = benchAsk();
		const result = await stub.acquire(ask);
		if (result.kind !== "admitted") {
			refused += 1;
			continue;
		}
		await stub.release(ask.ticketId, 1);
		admitted += 1;
	}
	return Response.json({ admitted, refused, elapsedMs: Date.now() - startedMs });
}

export default {
	/** wrangler.toml's batch queues name this Worker as their consumer: tollbooth's own. */
	queue(batch: unknown, env: unknown): Promise<void> {
		return tollbooth.queue(batch, env);
	},
	async fetch(request: Request, env: BenchEnv, ctx: Context): Promise<Response> {
		const url = new URL(request.url);
		if (!url.pathname.startsWith("/bench/")) {
			const POOL = benchNamespace(env.POOL, Number(env.BENCH_POOL_DELAY_MS ?? 0));
			return tollbooth.fetch(request, { ...env, POOL }, ctx);
		}
		if (url.pathname === "/bench/pool-calls") {
			const calls = { ...poolCalls };
			if (url.searchParams.has("reset"))
				for (const pool of Object.keys(poolCalls)) delete poolCalls[pool];
			return Response.json(calls);
		}
		if (url.pathname === "/bench/gateway-loop") {
			return gatewayLoop(request, env, ctx, Number(url.searchParams.get("n") ?? 100));
		}
		if (url.pathname === "/bench/constant") {
			return new Response(CONSTANT_ANSWER, { headers: { "content-type": "application/json" } });
		}
		if (url.pathname.startsWith(`${PASSTHROUGH_PREFIX}/`)) {
			const path = url.pathname.slice(PASSTHROUGH_PREFIX.length) + url.search;
			return fetch(new Request(env.BENCH_UPSTREAM + path, request));
		}
		if (url.pathname.startsWith(`${POOLED_PREFIX}/`)) return pooled(request, env, ctx, url);
		const pool = url.searchParams.get("pool") ?? "";
		if (url.pathname === "/bench/decisions") {
			return decisions(env, pool, Number(url.searchParams.get("ms") ?? 1_000));
		}
		if (url.pathname === "/bench/rpc-costs") {
			return rpcCosts(env, pool, Number(url.searchParams.get("n") ?? 200));
		}
		if (url.pathname === "/bench/storage-stats") {
			return Response.json(await env.POOL.getByName(pool).storageStats());
		}
		return new Response("unknown bench route", { status: 404 });
	},
};
