// Routes the Worker's outbound fetch to an in-process mock provider (the Worker runs in the
// tests' isolate), and refuses any other destination so no test can reach the network.
import { vi } from "vitest";
import { createMockProvider, type MockOptions } from "../../src/mock/provider.ts";
import { MOCK_ORIGIN, TEST_PROVIDER_KEY } from "./test-config.ts";

export type Upstream = (request: Request) => Promise<Response>;

/**
 * Installs the mock as the upstream. `intercept` may answer a request itself (return a Response)
 * or pass it on to the mock (return undefined), e.g. to inject a provider 429.
 */
export function installMockUpstream(
	options: Partial<MockOptions> = {},
	intercept?: (
		request: Request,
		attempt: number,
	) => Response | undefined | Promise<Response | undefined>,
) {
	// Far above every test pool's limits, so a pool learns nothing from it unless a test says so.
	const mock = createMockProvider({
		requestsPerMinute: 1_000_000,
		tokensPerMinute: 1_000_000_000,
		latencyMs: 0,
		chunkDelayMs: 0,
		apiKey: TEST_PROVIDER_KEY,
		...options,
	});
	// What the provider received, read eagerly: a body stream belongs to the Worker's request and
	// cannot be read later from the test's own context.
	const sent: { url: string; headers: Headers; body: string; atMs: number }[] = [];
	const spy = vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
		const request = new Request(input, init);
		const url = new URL(request.url);
		if (url.origin !== MOCK_ORIGIN) throw new Error(`a test tried to reach ${url.origin}`);
		const atMs = Date.now();
		sent.push({
			url: request.url,
			headers: new Headers(request.headers),
			body: await request.clone().text(),
			atMs,
		});
		const answered = await intercept?.(request, sent.length);
		if (answered) return answered;
		return mock.fetch(request);
	});
	return { mock, sent, restore: () => spy.mockRestore() };
}
