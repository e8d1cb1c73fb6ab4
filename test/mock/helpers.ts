// Shared helpers for the mock provider's tests: requests in each provider's shape, SSE reading,
// and a clock the test moves by hand.
import { createParser, type EventSourceMessage } from "eventsource-parser";
import {
	createMockProvider,
	type MockOptions,
	type MockProvider,
} from "../../src/mock/provider.ts";

export const START_MS = Date.UTC(2026, 0, 1);

export interface ClockedMock {
	provider: MockProvider;
	clock: { nowMs: number };
}

/** A mock whose clock only moves when the test moves it. */
export function clockedMock(options: Partial<MockOptions> = {}): ClockedMock {
	const clock = { nowMs: START_MS };
	return { provider: createMockProvider(options, () => clock.nowMs), clock };
}

export function post(
	provider: MockProvider,
	path: string,
	body: unknown,
	headers: Record<string, string> = {},
	signal?: AbortSignal,
): Promise<Response> {
	return provider.fetch(
		new Request(`http://mock${path}`, {
			method: "POST",
			headers: { "content-type": "application/json", ...headers },
			body: typeof body === "string" ? body : JSON.stringify(body),
			signal,
		}),
	);
}

export function get(provider: MockProvider, path: string, headers: Record<string, string> = {}) {
	return provider.fetch(new Request(`http://mock${path}`, { headers }));
}

/** A chat request whose prompt is `promptTokens` tokens under the mock's 4-characters rule. */
export function chat(promptTokens = 1, extra: Record<string, unknown> = {}) {
	return {
		model: "gpt-4o-mini",
		messages: [{ role: "user", content: "word".repeat(promptTokens) }],
		...extra,
	};
}

export function anthropicMessage(promptTokens = 1, extra: Record<string, unknown> = {}) {
	return {
		model: "claude-sonnet-4-5",
		max_tokens: 1024,
		messages: [{ role: "user", content: "word".repeat(promptTokens) }],
		...extra,
	};
}

/** Every event of an SSE body, read to the end. */
export async function readEvents(response: Response): Promise<EventSourceMessage[]> {
	const events: EventSourceMessage[] = [];
	const parser = createParser({ onEvent: (event) => events.push(event) });
	parser.feed(await response.text());
	return events;
}

/** The JSON payloads of an SSE body, without the `[DONE]` sentinel. */
export async function readData(response: Response): Promise<Record<string, unknown>[]> {
	const events = await readEvents(response);
	return events.filter((event) => event.data !== "[DONE]").map((event) => JSON.parse(event.data));
}
