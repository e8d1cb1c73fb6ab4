// End to end: `wrangler dev` with the default dev setup, driven by the real openai and
// @anthropic-ai/sdk clients with only baseURL and apiKey changed.
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WranglerDev } from "../../bench/lib/wrangler-dev.ts";
import {
	anthropicClient,
	DEV_PROVIDER_KEY,
	mockLastRequest,
	openaiClient,
	startDevGateway,
} from "./support/dev-gateway.ts";

let gateway: WranglerDev;
beforeAll(async () => {
	gateway = await startDevGateway();
});
afterAll(async () => {
	await gateway?.stop();
});

const chat = {
	model: "gpt-4o-mini",
	messages: [{ role: "user" as const, content: "Say hello" }],
	max_tokens: 16,
};
const message = {
	model: "claude-haiku-4-5-20251001",
	max_tokens: 16,
	messages: [{ role: "user" as const, content: "Say hello" }],
};

describe("OpenAI SDK", () => {
	it("chat.completions.create answers with usage, sent upstream with the pool's key", async () => {
		const completion = await openaiClient(gateway).chat.completions.create(chat);
		expect(completion.object).toBe("chat.completion");
		expect(completion.choices[0]?.message.content).toBeTruthy();
		expect(completion.usage?.prompt_tokens).toBeGreaterThan(0);
		expect(completion.usage?.completion_tokens).toBeGreaterThan(0);
		const upstream = await mockLastRequest(gateway);
		expect(upstream.lastPath).toBe("/openai/v1/chat/completions");
		expect(upstream.lastAuthorization).toBe(`Bearer ${DEV_PROVIDER_KEY}`);
	});

	it("a stream with include_usage ends with the usage chunk", async () => {
		const stream = await openaiClient(gateway).chat.completions.create({
			...chat,
			stream: true,
			stream_options: { include_usage: true },
		});
		const chunks = [];
		for await (const chunk of stream) chunks.push(chunk);
		const last = chunks.at(-1);
		expect(last?.choices).toEqual([]);
		expect(last?.usage?.completion_tokens).toBeGreaterThan(0);
		expect(chunks.slice(0, -1).every((chunk) => !chunk.usage)).toBe(true);
	});

	it("a stream without include_usage runs to the end and shows no usage-only chunk", async () => {
		const stream = await openaiClient(gateway).chat.completions.create({ ...chat, stream: true });
		const chunks = [];
		for await (const chunk of stream) chunks.push(chunk);
		expect(chunks.length).toBeGreaterThan(1);
		expect(chunks.filter((chunk) => chunk.choices.length === 0)).toEqual([]);
		expect(chunks.every((chunk) => !chunk.usage)).toBe(true);
		expect(chunks.at(-1)?.choices[0]?.finish_reason).toBeTruthy();
		const text = chunks.map((chunk) => chunk.choices[0]?.delta.content ?? "").join("");
		expect(text).not.toBe("");
	});

	it("embeddings.create returns one vector per input", async () => {
		const embeddings = await openaiClient(gateway).embeddings.create({
			model: "text-embedding-3-small",
			input: ["first", "second"],
		});
		expect(embeddings.data.map((item) => item.index)).toEqual([0, 1]);
		expect(embeddings.data[0]?.embedding.length).toBeGreaterThan(0);
		expect(embeddings.usage.prompt_tokens).toBeGreaterThan(0);
	});

	it("responses.create answers with text and usage", async () => {
		const response = await openaiClient(gateway).responses.create({
			model: "gpt-4o-mini",
			input: "Say hello",
			max_output_tokens: 16,
		});
		expect(response.status).toBe("completed");
		expect(response.output_text).not.toBe("");
		expect(response.usage?.output_tokens).toBeGreaterThan(0);
	});

	it("a bad gateway key raises the SDK's AuthenticationError (401)", async () => {
		const call = openaiClient(gateway, "not-a-tollbooth-key").chat.completions.create(chat);
		const error = await call.catch((thrown: unknown) => thrown);
		expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
		expect((error as InstanceType<typeof OpenAI.AuthenticationError>).status).toBe(401);
		expect((error as Error).message).toMatch(/gateway key/);
	});

	it("a body without a model raises the SDK's BadRequestError (400)", async () => {
		const call = openaiClient(gateway).post("/chat/completions", {
			body: { messages: chat.messages },
		});
		const error = await call.catch((thrown: unknown) => thrown);
		expect(error).toBeInstanceOf(OpenAI.BadRequestError);
		expect((error as InstanceType<typeof OpenAI.BadRequestError>).status).toBe(400);
	});

	it("withResponse() shows the pool's x-ratelimit-* and tollbooth's x-tollbooth-* headers", async () => {
		const { data, response } = await openaiClient(gateway)
			.chat.completions.create(chat)
			.withResponse();
		expect(data.object).toBe("chat.completion");
		const { headers } = response;
		// wrangler.toml's dev pool: 600 requests and 600,000 tokens a minute.
		expect(headers.get("x-ratelimit-limit-requests")).toBe("600");
		expect(headers.get("x-ratelimit-limit-tokens")).toBe("600000");
		expect(Number(headers.get("x-ratelimit-remaining-requests"))).toBeLessThan(600);
		expect(Number(headers.get("x-ratelimit-remaining-tokens"))).toBeLessThan(600_000);
		expect(headers.get("x-ratelimit-reset-requests")).toMatch(/^\d+(ms|s)$|^\d+m[\d.]+s$/);
		expect(headers.get("x-ratelimit-reset-tokens")).toMatch(/^\d+(ms|s)$|^\d+m[\d.]+s$/);
		expect(headers.get("x-tollbooth-pool")).toBe("openai");
		expect(Number(headers.get("x-tollbooth-queue-ms"))).toBeGreaterThanOrEqual(0);
		expect(headers.get("x-tollbooth-retries")).toBe("0");
	});
});

describe("Anthropic SDK", () => {
	it("messages.create answers with usage, sent upstream with the pool's key", async () => {
		const answer = await anthropicClient(gateway).messages.create(message);
		expect(answer.type).toBe("message");
		expect(answer.content[0]?.type).toBe("text");
		expect(answer.usage.input_tokens).toBeGreaterThan(0);
		expect(answer.usage.output_tokens).toBeGreaterThan(0);
		const upstream = await mockLastRequest(gateway);
		expect(upstream.lastPath).toBe("/anthropic/v1/messages");
		expect(upstream.lastApiKey).toBe(DEV_PROVIDER_KEY);
	});

	it("messages.stream() ends in a final message with usage", async () => {
		const stream = anthropicClient(gateway).messages.stream(message);
		const final = await stream.finalMessage();
		expect(final.stop_reason).toBeTruthy();
		expect(final.content[0]?.type).toBe("text");
		expect(final.usage.output_tokens).toBeGreaterThan(1);
	});

	it("a bad gateway key raises the SDK's AuthenticationError (401)", async () => {
		const call = anthropicClient(gateway, "not-a-tollbooth-key").messages.create(message);
		const error = await call.catch((thrown: unknown) => thrown);
		expect(error).toBeInstanceOf(Anthropic.AuthenticationError);
		expect((error as InstanceType<typeof Anthropic.AuthenticationError>).status).toBe(401);
		expect((error as Error).message).toMatch(/gateway key/);
	});

	it("withResponse() shows the pool's x-ratelimit-* and tollbooth's x-tollbooth-* headers", async () => {
		const { response } = await anthropicClient(gateway).messages.create(message).withResponse();
		expect(response.headers.get("x-ratelimit-limit-requests")).toBe("600");
		expect(response.headers.get("x-tollbooth-pool")).toBe("anthropic");
		expect(response.headers.get("x-tollbooth-retries")).toBe("0");
	});
});
