// The `npm run dev` setup read from wrangler.toml itself (pools on the built-in mock, the dev
// tenant), re-pointed at a gateway on another port, so tests exercise the default dev configuration.
import { resolve } from "node:path";
import { unstable_readConfig } from "wrangler";
import { DEV_ENV } from "./wrangler-dev.ts";

/** The documented local dev key; wrangler.toml's dev tenant holds its SHA-256. */
export const DEV_GATEWAY_KEY = "tb-dev-key";

const WRANGLER_TOML = resolve(import.meta.dirname, "../../wrangler.toml");

interface PoolEntry {
	baseUrl: string;
}

/** wrangler.toml's TOLLBOOTH_CONFIG with every pool that points at the dev server moved to `origin`. */
export function devConfig(origin: string): object {
	const wrangler = unstable_readConfig(
		{ config: WRANGLER_TOML, env: DEV_ENV },
		{ hideWarnings: true },
	);
	const config = wrangler.vars.TOLLBOOTH_CONFIG as { pools: PoolEntry[] } | undefined;
	if (typeof config !== "object" || !Array.isArray(config.pools)) {
		throw new Error(`${WRANGLER_TOML} has no [env.${DEV_ENV}.vars.TOLLBOOTH_CONFIG] with pools`);
	}
	const devOrigin = `http://${wrangler.dev.ip}:${wrangler.dev.port}`;
	const pools = config.pools.map((pool) =>
		pool.baseUrl.startsWith(`${devOrigin}/`)
			? { ...pool, baseUrl: origin + pool.baseUrl.slice(devOrigin.length) }
			: pool,
	);
	return { ...config, pools };
}
