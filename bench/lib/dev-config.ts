// The `npm run dev` setup read from wrangler.toml itself (pools on the built-in mock, the dev
// tenant), so tests exercise the default dev configuration.
import { resolve } from "node:path";
import { unstable_readConfig } from "wrangler";
import { DEV_ENV } from "./wrangler-dev.ts";

/** The documented local dev key; wrangler.toml's dev tenant holds its SHA-256. */
export const DEV_GATEWAY_KEY = "tb-dev-key";

const WRANGLER_TOML = resolve(import.meta.dirname, "../../wrangler.toml");

/**
 * wrangler.toml's [env.dev] TOLLBOOTH_CONFIG. Its pools name the mock's own origin, which
 * src/dev.ts serves in-process, so they work on whatever port the gateway listens.
 */
export function devConfig(): object {
	const wrangler = unstable_readConfig(
		{ config: WRANGLER_TOML, env: DEV_ENV },
		{ hideWarnings: true },
	);
	const config = wrangler.vars.TOLLBOOTH_CONFIG as { pools: unknown[] } | undefined;
	if (typeof config !== "object" || !Array.isArray(config.pools)) {
		throw new Error(`${WRANGLER_TOML} has no [env.${DEV_ENV}.vars.TOLLBOOTH_CONFIG] with pools`);
	}
	return config;
}
