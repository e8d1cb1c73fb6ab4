// Calling the Worker as a client would, and reading a pool's live state from its object.
import { env, exports } from "cloudflare:workers";
import { expect, vi } from "vitest";
import { TEST_KEYS } from "./test-config.ts";

export const CHAT = {
	model: "gpt-4o-mini",
	messages: [{ role: "user", content: "Hi" }],
	max_tokens: 16,
};

export interface PostOptions {
	/** After /v1; default /chat/completions. */
	path?: string;
	body?: object;
	headers?: Record<string, string>;
	/** Gateway key; default team A's. */
	key?: string;
}

/** POSTs a JSON body (default: a small chat request) to /<pool>/v1<path> through the Worker. */
export function postToPool(pool: string, options: PostOptions = {}): Promise<Response> {
	return exports.default.fetch(
		new Request(`http://tollbooth.test/${pool}/v1${options.path ?? "/chat/completions"}`, {
			method: "POST",
			headers: {
				authorization: `Bearer ${options.key ?? TEST_KEYS.teamA}`,
				"content-type": "application/json",
				...options.headers,
			},
			body: JSON.stringify(options.body ?? CHAT),
		}),
	);
}

export const poolStatus = (pool: string) => env.POOL.getByName(pool).status();

/** Leases are released after the response (waitUntil): waits until none is in flight. */
export async function settledPool(pool: string) {
	await vi.waitFor(async () => expect((await poolStatus(pool)).inFlight).toBe(0), {
		timeout: 1000,
		interval: 20,
	});
	return poolStatus(pool);
}
