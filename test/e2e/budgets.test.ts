// End to end through `wrangler dev` against the built-in mock: a tenant and its key made with the
// admin CLI work with the official SDKs, which raise their own RateLimitError at the budget; and
// the "Done when": 200 concurrent requests against a budget of N tokens.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { WranglerDev } from "../../bench/lib/wrangler-dev.ts";
import { anthropicClient, openaiClient, startDevGateway } from "./support/dev-gateway.ts";

/** wrangler.toml's dev admin token (its SHA-256 is the dev adminKeySha256). */
const DEV_ADMIN_TOKEN = "tb-dev-admin";

let gateway: WranglerDev;
beforeAll(async () => {
	gateway = await startDevGateway();
});
afterAll(async () => {
	await gateway?.stop();
});

const run = promisify(execFile);

/** Runs the admin CLI against the gateway; its stdout. */
async function cli(...args: string[]): Promise<string> {
	const { stdout } = await run(process.execPath, ["scripts/admin.ts", ...args], {
		env: { ...process.env, TOLLBOOTH_URL: gateway.origin, TOLLBOOTH_ADMIN_TOKEN: DEV_ADMIN_TOKEN },
	});
	return stdout;
}

async function admin(method: string, path: string, body?: unknown): Promise<unknown> {
	const response = await fetch(`${gateway.origin}/admin${path}`, {
		method,
		headers: { authorization: `Bearer ${DEV_ADMIN_TOKEN}`, "content-type": "application/json" },
		body: body === undefined ? undefined : JSON.stringify(body),
	});
	if (!response.ok)
		throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
	return response.status === 204 ? undefined : response.json();
}

const keyOf = (stdout: string) => stdout.match(/key:\s+(tb_live_[0-9a-f]+)/)?.[1] ?? "";

it("a tenant and key made with the admin CLI work with both SDKs, which raise RateLimitError at the budget", async () => {
	await cli("tenants", "create", "sdk-team");
	const key = keyOf(await cli("keys", "create", "sdk-team"));
	expect(key).toMatch(/^tb_live_/);

	const completion = await openaiClient(gateway, key).chat.completions.create({
		model: "gpt-4o-mini",
		messages: [{ role: "user", content: "Say hello" }],
		max_tokens: 16,
	});
	expect(completion.choices[0]?.message.content).toBeTruthy();

	// Less than one request's estimate: the next one is refused before it is sent.
	await cli("budget", "set", "sdk-team", "--tokens-per-day", "10");
	const openaiError = await openaiClient(gateway, key)
		.chat.completions.create({
			model: "gpt-4o-mini",
			messages: [{ role: "user", content: "Say hello" }],
			max_tokens: 16,
		})
		.catch((error: unknown) => error);
	expect(openaiError).toBeInstanceOf(OpenAI.RateLimitError);
	expect((openaiError as InstanceType<typeof OpenAI.RateLimitError>).code).toBe(
		"insufficient_quota",
	);

	const anthropicError = await anthropicClient(gateway, key)
		.messages.create({
			model: "claude-haiku-4-5",
			max_tokens: 16,
			messages: [{ role: "user", content: "Say hello" }],
		})
		.catch((error: unknown) => error);
	expect(anthropicError).toBeInstanceOf(Anthropic.RateLimitError);

	const usage = JSON.parse(await cli("usage", "sdk-team")) as { rows: { requests: number }[] };
	expect(usage.rows.reduce((sum, row) => sum + row.requests, 0)).toBe(1);

	const listed = JSON.parse(await cli("keys", "list", "sdk-team")) as { keys: { id: string }[] };
	await cli("keys", "revoke", "sdk-team", listed.keys[0]?.id ?? "");
	const revoked = await openaiClient(gateway, key)
		.models.list()
		.catch((error: unknown) => error);
	expect(revoked).toBeInstanceOf(OpenAI.AuthenticationError);
});

it("done when: 200 concurrent requests against a budget of N tokens — usage equals the provider's count, never past N, downgraded past downgradeAt, 429 with the reset time past the limit", async () => {
	const N = 3000;
	await admin("POST", "/tenants", {
		name: "done-when",
		pools: ["*"],
		budget: { tokensPerDay: N, downgradeAt: 0.9, downgrade: { "gpt-4o": "gpt-4o-mini" } },
	});
	const { key } = (await admin("POST", "/tenants/done-when/keys", {})) as { key: string };
	const before = (await (await fetch(`${gateway.origin}/mock/_mock/stats`)).json()) as {
		promptTokens: number;
		completionTokens: number;
	};
	const body = JSON.stringify({
		model: "gpt-4o",
		messages: [{ role: "user", content: "Say hello" }],
		max_tokens: 16,
	});
	const burst = (size: number) =>
		Promise.all(
			Array.from({ length: size }, async () => {
				const response = await fetch(`${gateway.origin}/openai/v1/chat/completions`, {
					method: "POST",
					headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
					body,
				});
				const json = (await response.json()) as {
					model?: string;
					error?: { code?: string; message?: string };
				};
				return {
					status: response.status,
					downgradedFrom: response.headers.get("x-tollbooth-model-downgraded-from"),
					reset: response.headers.get("x-tollbooth-budget-reset"),
					retryAfter: response.headers.get("retry-after"),
					code: json.error?.code,
					/** Refused for what requests in flight held, not for what was used. */
					held: json.error?.message?.includes("held by requests in flight") ?? false,
				};
			}),
		);
	const answers = await burst(200);
	const firstBurst = answers.length;
	// Those refused for what the burst held retry after their second, until the budget is spent.
	for (let wave = 0; wave < 60 && !answers.some((a) => a.status === 429 && !a.held); wave++) {
		await new Promise((resolve) => setTimeout(resolve, 1000));
		answers.push(...(await burst(20)));
	}
	const ok = answers.filter((answer) => answer.status === 200);
	const refused = answers.filter((answer) => answer.status === 429);
	const downgraded = ok.filter((answer) => answer.downgradedFrom === "gpt-4o");
	expect(ok.length + refused.length).toBe(answers.length);
	expect(refused.some((answer) => !answer.held)).toBe(true);
	expect(refused.length).toBeGreaterThan(0);
	expect(downgraded.length).toBeGreaterThan(0);
	const nextMidnight = new Date(new Date().setUTCHours(24, 0, 0, 0)).toISOString();
	for (const answer of refused) {
		expect(answer.code).toBe("insufficient_quota");
		expect(answer.reset).toBe(nextMidnight);
		const untilReset = (Date.parse(nextMidnight) - Date.now()) / 1000;
		if (answer.held) expect(answer.retryAfter).toBe("1");
		else expect(Math.abs(Number(answer.retryAfter) - untilReset)).toBeLessThan(10);
	}

	const day = new Date().toISOString().slice(0, 10);
	let rows: { model: string; requests: number; inputTokens: number; outputTokens: number }[] = [];
	for (let i = 0; i < 40; i++) {
		rows = (
			(await admin("GET", `/tenants/done-when/usage?from=${day}&to=${day}`)) as {
				rows: typeof rows;
			}
		).rows;
		if (rows.reduce((sum, row) => sum + row.requests, 0) === ok.length) break;
		await new Promise((resolve) => setTimeout(resolve, 250));
	}
	const after = (await (await fetch(`${gateway.origin}/mock/_mock/stats`)).json()) as typeof before;
	const providerTokens =
		after.promptTokens + after.completionTokens - before.promptTokens - before.completionTokens;
	const charged = rows.reduce((sum, row) => sum + row.inputTokens + row.outputTokens, 0);
	console.log(
		`done when: N=${N}, ${firstBurst} at once then waves of 20: ${answers.length} requests, ${ok.length} ok (${downgraded.length} downgraded), ${refused.length} refused (${refused.filter((a) => a.held).length} for what requests in flight held); charged ${charged} tokens, provider counted ${providerTokens}; rows ${JSON.stringify(rows)}`,
	);
	expect(rows.reduce((sum, row) => sum + row.requests, 0)).toBe(ok.length);
	expect(charged).toBe(providerTokens);
	expect(charged).toBeLessThanOrEqual(N);
	expect(rows.find((row) => row.model === "gpt-4o-mini")?.requests).toBe(downgraded.length);
});
