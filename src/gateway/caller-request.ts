// What the caller asked for, read from its request: priority, how long it will wait, and the
// cost estimate the Pool reserves (1 request, the prompt and output token estimate).
import type { Context } from "hono";
import type { PoolConfig } from "../config.ts";
import { PRIORITIES, type Priority } from "../durable/pool.ts";
import { parseJson } from "../providers/estimate.ts";
import type { Provider } from "../providers/types.ts";
import type { GatewayEnv } from "./env.ts";
import { GatewayError } from "./errors.ts";

export interface Cost {
	model: string;
	tokens: number;
	promptTokens: number;
	/** The body as sent upstream, when it is JSON. */
	json?: unknown;
}

/** decode() without { stream } keeps no state between calls: one decoder serves every request. */
const decoder = new TextDecoder();

/** The caller's JSON body, or undefined for a body that is not JSON (passed through as bytes). */
export function readJson(
	c: Context<GatewayEnv>,
	rest: string,
	raw: ArrayBuffer | undefined,
): unknown {
	const contentType = c.req.header("content-type") ?? "";
	if (raw === undefined || !contentType.includes("json")) {
		if (c.get("route").kind === "metered") {
			throw new GatewayError(
				400,
				`${rest} takes a JSON body (content-type: application/json).`,
				"bad_json",
			);
		}
		return undefined;
	}
	const json = parseJson(decoder.decode(raw));
	if (json === undefined) {
		throw new GatewayError(400, "The request body is not valid JSON.", "bad_json");
	}
	return json;
}

/** What the request costs in `pool`: 1 request and its token estimate. */
export function estimateCost(
	provider: Provider,
	pool: PoolConfig,
	rest: string,
	json: unknown,
): Cost {
	if (json === undefined) return { model: "", tokens: 0, promptTokens: 0 };
	const estimate = provider.estimate(rest, json, pool.defaultMaxOutputTokens);
	if (estimate.kind === "invalid") {
		if (provider.meteredRoutes.has(rest))
			throw new GatewayError(400, estimate.message, "bad_request");
		return { model: "", tokens: 0, promptTokens: 0, json };
	}
	const { model, tokens, promptTokens } = estimate;
	return { model, tokens, promptTokens, json };
}

/** x-priority, capped by the tenant's maximum (silently: the response says so). */
export function effectivePriority(
	header: string | null,
	defaultPriority: Priority,
	maxPriority: Priority,
): { requested: Priority; effective: Priority; capped: boolean } {
	const value = header?.trim().toLowerCase();
	if (value && !PRIORITIES.includes(value as Priority)) {
		throw new GatewayError(
			400,
			`x-priority must be one of ${PRIORITIES.join(", ")}; got "${header}".`,
			"bad_priority",
		);
	}
	const requested = (value as Priority | undefined) || defaultPriority;
	const capped = PRIORITIES.indexOf(requested) < PRIORITIES.indexOf(maxPriority);
	return { requested, effective: capped ? maxPriority : requested, capped };
}

export function requestedMaxWaitMs(header: string | null, poolMaxWaitMs: number): number {
	if (header === null) return poolMaxWaitMs;
	const value = Number(header);
	if (!Number.isFinite(value) || value < 0) {
		throw new GatewayError(
			400,
			`x-max-wait-ms must be a number of milliseconds ≥ 0; got "${header}".`,
			"bad_max_wait",
		);
	}
	return Math.min(value, poolMaxWaitMs);
}
