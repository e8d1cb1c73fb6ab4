// The gateway as `npm run dev` serves it (built-in mock provider, dev pools and key), started on a
// free port for one test file, and the two real SDKs pointed at it.
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { DEV_GATEWAY_KEY, devConfig } from "../../../bench/lib/dev-config.ts";
import { startWranglerDev, type WranglerDev } from "../../../bench/lib/wrangler-dev.ts";

export { DEV_GATEWAY_KEY };

/** The provider key wrangler.toml gives the dev pools, which the built-in mock checks. */
export const DEV_PROVIDER_KEY = "mock-upstream-key";

export function startDevGateway(): Promise<WranglerDev> {
	return startWranglerDev({ config: devConfig() });
}

// No SDK retries: a test must see the gateway's first answer, and fail fast.
const sdkOptions = { maxRetries: 0, timeout: 20_000 };

export function openaiClient(gateway: WranglerDev, apiKey = DEV_GATEWAY_KEY): OpenAI {
	return new OpenAI({ ...sdkOptions, apiKey, baseURL: `${gateway.origin}/openai/v1` });
}

export function anthropicClient(gateway: WranglerDev, apiKey = DEV_GATEWAY_KEY): Anthropic {
	return new Anthropic({ ...sdkOptions, apiKey, baseURL: `${gateway.origin}/anthropic` });
}

export interface MockLastRequest {
	lastPath?: string;
	lastAuthorization?: string;
	lastApiKey?: string;
}

/** What the built-in mock last received, read through its control route at /mock/_mock/stats. */
export async function mockLastRequest(gateway: WranglerDev): Promise<MockLastRequest> {
	const response = await fetch(`${gateway.origin}/mock/_mock/stats`);
	return (await response.json()) as MockLastRequest;
}
