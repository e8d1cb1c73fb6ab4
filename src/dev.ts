// Local dev Worker entry ([env.dev]): the gateway, and the built-in mock provider served in-process,
// both at /mock/* and to the dev pools whose baseUrl names MOCK_ORIGIN, on whatever port dev serves.
import { createApp } from "./gateway/app.ts";
import { createBatchConsumer, type LineMessage } from "./gateway/batch-consumer.ts";
import { createMockProvider, type MockProvider, mockOptionsFromEnv } from "./mock/provider.ts";

export { Batch } from "./durable/batch.ts";
export { TenantBudget } from "./durable/budget.ts";
export { Pool } from "./durable/pool.ts";
export { TenantRegistry } from "./durable/registry.ts";

/** The dev pools' provider. `.invalid` never resolves, so outside dev it reaches nothing. */
const MOCK_ORIGIN = "http://mock.invalid";

let mock: MockProvider | undefined;

/** Upstream calls to MOCK_ORIGIN go to the mock; any other pool's to its configured host. */
const upstreamFetch: typeof fetch = (input, init) => {
	const url = new URL(input instanceof Request ? input.url : input);
	if (url.origin === MOCK_ORIGIN && mock) return mock.fetch(new Request(input, init));
	return fetch(input, init);
};

const gateway = createApp({ upstreamFetch });
const consumeBatchLines = createBatchConsumer({ upstreamFetch });

export default {
	fetch(request, env, ctx): Response | Promise<Response> {
		mock ??= createMockProvider(mockOptionsFromEnv(env as unknown as Record<string, unknown>));
		const url = new URL(request.url);
		if (url.pathname.startsWith("/mock/")) {
			url.pathname = url.pathname.slice("/mock".length);
			return mock.fetch(new Request(url, request));
		}
		return gateway.fetch(request, env, ctx);
	},
	queue(batch, env): Promise<void> {
		return consumeBatchLines(batch, env);
	},
} satisfies ExportedHandler<Env, LineMessage>;
