// Each fault the mock can play, set in its options or per request with x-mock-fault, as a
// client of the provider would notice it.
import { describe, expect, it } from "vitest";
import { createMockProvider } from "../../src/mock/provider.ts";
import { anthropicMessage, chat, post } from "./helpers.ts";

const CHAT = "/openai/v1/chat/completions";
const MESSAGES = "/anthropic/v1/messages";

/** How many SSE frames arrive before the body ends or breaks, and whether it broke. */
async function readFrames(response: Response): Promise<{ frames: number; broke: boolean }> {
	const reader = response.body?.pipeThrough(new TextDecoderStream()).getReader();
	let text = "";
	try {
		for (let read = await reader?.read(); read && !read.done; read = await reader?.read()) {
			text += read.value;
		}
	} catch {
		return { frames: text.split("\n\n").length - 1, broke: true };
	}
	return { frames: text.split("\n\n").length - 1, broke: false };
}

describe("server errors", () => {
	it("500 and 503 in OpenAI's server_error shape; 529 becomes 503 on OpenAI paths", async () => {
		const provider = createMockProvider();
		for (const [fault, status] of [
			["500", 500],
			["503", 503],
			["529", 503],
		] as const) {
			const response = await post(provider, CHAT, chat(), { "x-mock-fault": fault });
			expect(response.status).toBe(status);
			expect(await response.json()).toMatchObject({
				error: { type: "server_error", message: expect.any(String) },
			});
		}
	});

	it("529 overloaded_error and 500 api_error in Anthropic's shape", async () => {
		const provider = createMockProvider();
		const overloaded = await post(provider, MESSAGES, anthropicMessage(), {
			"x-mock-fault": "529",
		});
		expect(overloaded.status).toBe(529);
		expect(await overloaded.json()).toEqual({
			type: "error",
			error: { type: "overloaded_error", message: "Overloaded" },
		});
		const failed = await post(provider, MESSAGES, anthropicMessage(), { "x-mock-fault": "500" });
		expect(failed.status).toBe(500);
		expect(await failed.json()).toMatchObject({ type: "error", error: { type: "api_error" } });
	});

	it("the option applies to every request and the header overrides it", async () => {
		const provider = createMockProvider({ fault: "503" });
		expect((await post(provider, CHAT, chat())).status).toBe(503);
		expect((await post(provider, CHAT, chat(), { "x-mock-fault": "none" })).status).toBe(200);
	});

	it("an unknown fault name is a 400, not silently ignored", async () => {
		const response = await post(createMockProvider(), CHAT, chat(), { "x-mock-fault": "explode" });
		expect(response.status).toBe(400);
		expect(await response.json()).toMatchObject({
			error: { message: expect.stringContaining("x-mock-fault") },
		});
	});
});

describe("broken connections", () => {
	it("reset: fetch rejects as on a dropped connection", async () => {
		const provider = createMockProvider();
		await expect(post(provider, CHAT, chat(), { "x-mock-fault": "reset" })).rejects.toThrow(
			"connection reset",
		);
		expect(provider.stats().requests).toBe(1);
	});

	it("hang: no answer until the request's signal aborts, then fetch rejects", async () => {
		const provider = createMockProvider();
		const controller = new AbortController();
		const pending = post(
			provider,
			MESSAGES,
			anthropicMessage(),
			{ "x-mock-fault": "hang" },
			controller.signal,
		);
		const outcome = pending.then(
			() => "answered",
			() => "rejected",
		);
		const early = await Promise.race([
			outcome,
			new Promise((resolve) => setTimeout(() => resolve("still waiting"), 50)),
		]);
		expect(early).toBe("still waiting");
		controller.abort();
		expect(await outcome).toBe("rejected");
	});

	it("cut-stream: a stream breaks after half its chunks", async () => {
		const provider = createMockProvider({ completionTokens: 6 });
		const whole = await readFrames(await post(provider, CHAT, chat(1, { stream: true })));
		expect(whole).toEqual({ frames: 9, broke: false }); // role, 6 tokens, finish, [DONE]
		const cut = await post(provider, CHAT, chat(1, { stream: true }), {
			"x-mock-fault": "cut-stream",
		});
		expect(cut.status).toBe(200);
		expect(await readFrames(cut)).toEqual({ frames: 4, broke: true });
	});

	it("cut-stream: a JSON body breaks half-way", async () => {
		const provider = createMockProvider();
		const cut = await post(provider, MESSAGES, anthropicMessage(), {
			"x-mock-fault": "cut-stream",
		});
		expect(cut.status).toBe(200);
		await expect(cut.json()).rejects.toThrow();
	});
});

describe("timing", () => {
	it("latencyMs passes before the response", async () => {
		const provider = createMockProvider({ latencyMs: 40 });
		const startedMs = Date.now();
		await post(provider, CHAT, chat());
		expect(Date.now() - startedMs).toBeGreaterThanOrEqual(40);
	});

	it("slow-stream: chunkDelayMs × 20 between chunks", async () => {
		const provider = createMockProvider({ completionTokens: 2, chunkDelayMs: 2 });
		const startedMs = Date.now();
		const response = await post(provider, CHAT, chat(1, { stream: true }), {
			"x-mock-fault": "slow-stream",
		});
		const { frames } = await readFrames(response);
		expect(frames).toBe(5);
		expect(Date.now() - startedMs).toBeGreaterThanOrEqual((frames - 1) * 40);
	});
});
