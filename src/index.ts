// Worker entry: the gateway's fetch handler, the Pool Durable Object class, and (for local dev
// only, when MOCK_PROVIDER = "on") the built-in mock provider under /mock/*.
import { createApp } from "./gateway/app.ts";
import { createMockProvider, type MockProvider, mockOptionsFromEnv } from "./mock/provider.ts";

export { Pool } from "./durable/pool.ts";

const gateway = createApp();
let mock: MockProvider | undefined;

export default {
	fetch(request, env, ctx): Response | Promise<Response> {
		const url = new URL(request.url);
		if (env.MOCK_PROVIDER === "on" && url.pathname.startsWith("/mock/")) {
			mock ??= createMockProvider(mockOptionsFromEnv(env as unknown as Record<string, unknown>));
			url.pathname = url.pathname.slice("/mock".length);
			return mock.fetch(new Request(url, request));
		}
		return gateway.fetch(request, env, ctx);
	},
} satisfies ExportedHandler<Env>;
