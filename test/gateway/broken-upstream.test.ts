// Through the Worker: a provider that breaks a stream, goes silent, or never finishes its answer
// leaves no caller hanging and no slot held.
import { env } from "cloudflare:workers";
import { afterEach, expect, it, vi } from "vitest";
import { postToPool } from "../support/gateway.ts";
import { installMockUpstream } from "../support/mock-upstream.ts";

let upstream: ReturnType<typeof installMockUpstream> | undefined;
afterEach(() => upstream?.restore());

const send = (pool: string, path: string, body: object, fault: string) =>
	postToPool(pool, { path, body, headers: { "x-mock-fault": fault } });

const chat = {
	model: "gpt-4o-mini",
	messages: [{ role: "user", content: "Hi" }],
	max_tokens: 16,
	stream: true,
};
const message = {
	model: "claude-sonnet-4-5",
	messages: [{ role: "user", content: "Hi" }],
	max_tokens: 16,
	stream: true,
};

async function idle(pool: string): Promise<void> {
	await vi.waitFor(async () => expect((await env.POOL.getByName(pool).status()).inFlight).toBe(0), {
		timeout: 1000,
		interval: 20,
	});
}

it("a stream cut half-way ends for the caller with the provider's own error event", async () => {
	upstream = installMockUpstream({ chunkDelayMs: 1 });
	const openai = await (await send("openai", "/chat/completions", chat, "cut-stream")).text();
	const lastOpenAI = openai.trim().split("\n\n").at(-1) ?? "";
	expect(JSON.parse(lastOpenAI.replace(/^data: /, "")).error.message).toMatch(/broke/);

	const anthropic = await (await send("anthropic", "/messages", message, "cut-stream")).text();
	const lastAnthropic = anthropic.trim().split("\n\n").at(-1) ?? "";
	expect(lastAnthropic).toMatch(/^event: error\ndata: /);
	expect(
		JSON.parse(lastAnthropic.split("\n")[1]?.replace(/^data: /, "") ?? "").error.type,
	).toBeTruthy();
	await idle("openai");
	await idle("anthropic");
});

it("a stream that goes silent past the idle timeout is ended with an error event", async () => {
	// slow-stream waits chunkDelayMs x 20 = 1 s between chunks; "impatient" allows 300 ms of silence.
	upstream = installMockUpstream({ chunkDelayMs: 50 });
	const started = Date.now();
	const text = await (await send("impatient", "/chat/completions", chat, "slow-stream")).text();
	expect(Date.now() - started).toBeLessThan(2000);
	expect(text.trim().split("\n\n").at(-1)).toMatch(/^data: \{"error"/);
	await idle("impatient");
});

it("an answer that never finishes is cut at the total timeout with a 504", async () => {
	// A provider that sends its JSON answer a byte every 100 ms, for ever.
	upstream = installMockUpstream({}, (request) => {
		const encoder = new TextEncoder();
		const body = new ReadableStream<Uint8Array>({
			async pull(controller) {
				await new Promise((resolve) => setTimeout(resolve, 100));
				if (request.signal.aborted) controller.error(new Error("aborted"));
				else controller.enqueue(encoder.encode(" "));
			},
		});
		return new Response(body, { headers: { "content-type": "application/json" } });
	});
	const response = await send("impatient", "/chat/completions", { ...chat, stream: false }, "none");
	expect(response.status).toBe(504);
	expect(await response.text()).toMatch(/did not finish within \d+ ms \(total timeout\)/);
	await idle("impatient");
});

it("a stream whose chunks keep coming is never cut, however long it lasts past its time limits", async () => {
	// A chunk every 100 ms for 1.5 s: past "impatient"'s 300 ms of silence and its 1 s total.
	const chunks = 15;
	upstream = installMockUpstream({}, (request) => {
		const encoder = new TextEncoder();
		let sent = 0;
		const body = new ReadableStream<Uint8Array>({
			async pull(controller) {
				await new Promise((resolve) => setTimeout(resolve, 100));
				if (request.signal.aborted) return controller.error(new Error("aborted"));
				sent += 1;
				if (sent > chunks) {
					controller.enqueue(encoder.encode("data: [DONE]\n\n"));
					controller.close();
					return;
				}
				const delta = { choices: [{ index: 0, delta: { content: `${sent} ` } }] };
				controller.enqueue(encoder.encode(`data: ${JSON.stringify(delta)}\n\n`));
			},
		});
		return new Response(body, { headers: { "content-type": "text/event-stream" } });
	});
	const started = Date.now();
	const response = await send("impatient", "/chat/completions", chat, "none");
	const text = await response.text();
	expect(Date.now() - started).toBeGreaterThan(1500);
	expect(response.status).toBe(200);
	expect(text).not.toMatch(/"error"/);
	expect(text.match(/"content":"\d+ "/g)).toHaveLength(chunks);
	expect(text.trim().endsWith("data: [DONE]")).toBe(true);
	await idle("impatient");
});
