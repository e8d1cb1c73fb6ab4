// The mock LLM provider: OpenAI- and Anthropic-compatible routes enforcing their own limits, plus
// /_mock/* control routes. Web-standard APIs only, so it runs in workerd and in Node alike.

import type { MiddlewareHandler } from "hono";
import { Hono } from "hono";
import * as v from "valibot";
import { anthropicDialect, anthropicRoutes } from "./anthropic.ts";
import { MockLimiter } from "./limiter.ts";
import { openaiDialect, openaiRoutes } from "./openai.ts";
import { DEFAULT_MOCK_OPTIONS, type MockOptions, partialMockOptionsSchema } from "./options.ts";
import {
	type Dialect,
	MockConnectionError,
	type MockStats,
	newStats,
	Simulator,
} from "./simulator.ts";

export type { MockFault, MockOptions } from "./options.ts";
export { DEFAULT_MOCK_OPTIONS, MOCK_FAULTS, mockOptionsFromEnv } from "./options.ts";
export type { MockStats } from "./simulator.ts";

export interface MockProvider {
	/** Rejects (like fetch on a broken connection) under the `reset` fault or once a hung request aborts. */
	fetch(request: Request): Promise<Response>;
	stats(): MockStats;
	/** Throws on an invalid value; what was used still counts against new limits. */
	configure(options: Partial<MockOptions>): void;
	/** Counters and buckets back to new; the options stay. */
	reset(): void;
}

function validOptions(options: unknown): Partial<MockOptions> {
	const parsed = v.safeParse(partialMockOptionsSchema, options);
	if (!parsed.success) throw new Error(`invalid mock options: ${v.summarize(parsed.issues)}`);
	return parsed.output;
}

function dialectFor(path: string): Dialect | undefined {
	if (path.startsWith("/openai/")) return openaiDialect;
	if (path.startsWith("/anthropic/")) return anthropicDialect;
	return undefined;
}

export function createMockProvider(
	options: Partial<MockOptions> = {},
	nowMs: () => number = Date.now,
): MockProvider {
	const sim = new Simulator({ ...DEFAULT_MOCK_OPTIONS, ...validOptions(options) }, nowMs);

	function configure(update: Partial<MockOptions>): void {
		sim.options = { ...sim.options, ...validOptions(update) };
		sim.limiter.resize(sim.options, nowMs());
	}

	function reset(): void {
		sim.stats = newStats();
		sim.limiter = new MockLimiter(sim.options, nowMs());
	}

	const countRequest: MiddlewareHandler = async function countRequest(c, next) {
		const { stats } = sim;
		stats.requests += 1;
		stats.lastPath = c.req.path;
		stats.lastAuthorization = c.req.header("authorization");
		stats.lastApiKey = c.req.header("x-api-key");
		await next();
		const { status } = c.res;
		stats.byStatus[status] = (stats.byStatus[status] ?? 0) + 1;
		if (status >= 200 && status < 300) stats.ok += 1;
		if (status === 429) stats.rateLimited += 1;
	};

	const app = new Hono();
	app.use("/openai/*", countRequest);
	app.use("/anthropic/*", countRequest);
	app.route("/openai/v1", openaiRoutes(sim));
	app.route("/anthropic/v1", anthropicRoutes(sim));

	app.get("/_mock/stats", (c) => c.json(sim.stats));
	app.get("/_mock/config", (c) => c.json(sim.options));
	app.post("/_mock/config", async (c) => {
		try {
			configure(await c.req.json());
		} catch (error) {
			const message = error instanceof Error ? error.message : String(error);
			return c.json({ error: { message } }, 400);
		}
		return c.json(sim.options);
	});
	app.post("/_mock/reset", (c) => {
		reset();
		return c.body(null, 204);
	});

	app.notFound((c) => {
		const dialect = dialectFor(c.req.path);
		return dialect ? dialect.notFound(c.req.raw) : c.json({ error: { message: "Not Found" } }, 404);
	});
	app.onError((error, c) => {
		// A broken or abandoned connection has no HTTP answer: let fetch reject.
		if (error instanceof MockConnectionError || c.req.raw.signal.aborted) throw error;
		console.error("mock provider failed", error);
		return (dialectFor(c.req.path) ?? openaiDialect).serverFault("500");
	});

	return {
		fetch: async (request) => app.fetch(request),
		stats: () => structuredClone(sim.stats),
		configure,
		reset,
	};
}
