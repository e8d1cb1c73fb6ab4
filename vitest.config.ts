import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { TEST_PROVIDER_KEY, TEST_WEBHOOK_SECRET, testConfig } from "./test/support/test-config.ts";

process.env.WRANGLER_SEND_METRICS = "false";

export default defineConfig({
	test: {
		projects: [
			{
				plugins: [
					cloudflareTest({
						wrangler: { configPath: "./wrangler.toml" },
						miniflare: {
							bindings: {
								TOLLBOOTH_CONFIG: JSON.stringify(testConfig),
								TEST_PROVIDER_KEY,
								TEST_WEBHOOK_SECRET,
							},
						},
					}),
				],
				test: {
					name: "workers",
					include: ["test/**/*.test.ts"],
					exclude: ["test/e2e/**", "test/node/**", "test/browser/**"],
					// Simulations of an hour of traffic take seconds; a loaded 2-core machine doubles that.
					testTimeout: 20_000,
				},
			},
			{
				test: { name: "node", include: ["test/node/**/*.test.ts"], environment: "node" },
			},
			{
				test: {
					name: "e2e",
					include: ["test/e2e/**/*.test.ts"],
					environment: "node",
					testTimeout: 60_000,
					hookTimeout: 120_000,
				},
			},
			{
				test: {
					name: "browser",
					include: ["test/browser/**/*.test.ts"],
					environment: "node",
					// After the others: Chromium and wrangler dev beside the CPU-bound core tests on two
					// cores pushed those past their timeouts.
					sequence: { groupOrder: 1 },
					testTimeout: 90_000,
					hookTimeout: 120_000,
				},
			},
		],
	},
});
