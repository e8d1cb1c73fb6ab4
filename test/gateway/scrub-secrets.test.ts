// What of a provider's answer may reach a client: its error text scrubbed of the pool's key and of
// key-shaped tokens, without damaging the real provider messages (fixtures) a client needs to read.
import { describe, expect, it } from "vitest";
import { scrubSecrets } from "../../src/gateway/upstream.ts";
import anthropicObserved from "../fixtures/providers/anthropic/errors_observed.json";
import anthropicRecorded from "../fixtures/providers/anthropic/errors_recorded.json";
import openaiErrors from "../fixtures/providers/openai/errors.json";

const POOL_KEY = "sk-proj-Q3xV9fLmA7bR2tKw8ZyN5cHd1JpE6uGs4iOo0TnXvBq";
const ANTHROPIC_KEY = "sk-ant-api03-Zk4Pq9Wm2Xr7Tn5Lb8Vc1Hd6Jf3Gs0Ye-AbCdEf12";

describe("scrubSecrets", () => {
	it.each([
		["the whole key", `Invalid key ${POOL_KEY} for this request`],
		["a masked key", "Incorrect API key provided: sk-proj-****************************XvBq."],
		["another provider key", `upstream said: ${ANTHROPIC_KEY}`],
		["the key quoted in JSON", JSON.stringify({ error: { message: `key=${POOL_KEY}` } })],
		["a long piece of the key", `key starts ${POOL_KEY.slice(0, 20)}…`],
		["a piece of the key in its middle", `got ${POOL_KEY.slice(10, 30)} in header`],
		["an opaque token after 'Bearer'", "Authorization: Bearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0"],
		["a base64 token after 'api_key='", "api_key=QmFzZTY0LWVuY29kZWQtc2VjcmV0LTEyMzQ1Ng=="],
		["a token after 'token:'", 'token: "a1b2c3d4e5f6a7b8c9d0e1f2"'],
		["a hex secret after 'key provided'", "API key provided: 0123456789abcdef0123456789abcdef"],
	])("removes %s", (_name, text) => {
		const scrubbed = scrubSecrets(text, POOL_KEY);
		expect(scrubbed).toContain("[redacted]");
		expect(scrubbed).not.toContain(POOL_KEY.slice(8, 20));
		expect(scrubbed).not.toMatch(/sk-[A-Za-z0-9*]{4}/);
		expect(scrubbed).not.toMatch(/[0-9a-f]{24}|QmFzZTY0|a1b2c3d4e5f6/);
	});

	it("leaves the providers' real error messages as they are (ids, limits, links)", () => {
		const messages = [
			...openaiErrors.cases.map((entry) => JSON.stringify(entry.body)),
			...Object.values(anthropicRecorded).map((entry) => JSON.stringify(entry)),
			...Object.values(anthropicObserved).map((entry) => JSON.stringify(entry)),
		];
		expect(messages.length).toBeGreaterThan(10);
		for (const message of messages) {
			// The one fixture that quotes a (masked, placeholder) key has no key-shaped token in it.
			expect(scrubSecrets(message, POOL_KEY)).toBe(message);
		}
	});

	it("leaves prose about keys and tokens alone", () => {
		const prose =
			"max_tokens is too large: this model supports at most 4096 completion tokens. Your API key is fine.";
		expect(scrubSecrets(prose, POOL_KEY)).toBe(prose);
	});
});
