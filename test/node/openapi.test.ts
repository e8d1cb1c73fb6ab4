// The OpenAPI document the Worker serves is generated at build time (npm run openapi): it must
// be the one the current admin schemas give, or the API's published contract lies.
import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { OPENAPI_FILE, openApiText } from "../../scripts/openapi.ts";

it("src/gateway/admin-openapi.json is what `npm run openapi` writes from today's schemas", () => {
	const committed = readFileSync(OPENAPI_FILE, "utf8");
	expect(committed, "stale: run `npm run openapi` and commit the file").toBe(openApiText());
});
