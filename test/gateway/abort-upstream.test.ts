// Through the Worker: when a caller leaves mid-stream, its slot is given back only once the
// provider's connection is closed, so the provider never holds more than maxConcurrent requests.
import { env, exports } from "cloudflare:workers";
import { afterEach, expect, it, vi } from "vitest";
import { installMockUpstream } from "../support/mock-upstream.ts";
import { TEST_KEYS } from "../support/test-config.ts";

let upstream: ReturnType<typeof installMockUpstream> | undefined;
afterEach(() => upstream?.restore());

const status = (pool: string) => env.POOL.getByName(pool).status();

it("a caller leaving a silent stream closes the provider's stream before its slot is freed", async () => {
	let upstreamClosedAtMs: number | undefined;
	// One chunk, then silence: a provider thinking before its next token.
	upstream = installMockUpstream({}, (request) => {
		const close = () => {
			upstreamClosedAtMs ??= Date.now();
		};
		request.signal.addEventListener("abort", close);
		const body = new ReadableStream<Uint8Array>({
			start(controller) {
				controller.enqueue(
					new TextEncoder().encode(
						`data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", choices: [{ index: 0, delta: { content: "Hi" } }] })}\n\n`,
					),
				);
			},
			cancel: close,
		});
		return new Response(body, { headers: { "content-type": "text/event-stream" } });
	});
	const response = await exports.default.fetch(
		new Request("http://tollbooth.test/openai/v1/chat/completions", {
			method: "POST",
			headers: { authorization: `Bearer ${TEST_KEYS.teamA}`, "content-type": "application/json" },
			body: JSON.stringify({
				model: "gpt-4o-mini",
				messages: [{ role: "user", content: "Hi" }],
				max_tokens: 16,
				stream: true,
			}),
		}),
	);
	const reader = response.body?.getReader();
	expect((await reader?.read())?.done).toBe(false);
	expect((await status("openai")).inFlight).toBe(1);

	await reader?.cancel();
	await vi.waitFor(async () => expect((await status("openai")).inFlight).toBe(0), {
		timeout: 2000,
		interval: 5,
	});
	// The slot is free: the provider must not still be holding the request.
	expect(upstreamClosedAtMs).toBeDefined();
});
