// The signature of a webhook body, Stripe-style: `t=<unix seconds>,v1=<hex HMAC-SHA256 of
// "<t>.<body>">` with the tenant's secret, so a receiver can check origin, integrity and age.

const encoder = new TextEncoder();

async function hmacHex(secret: string, text: string): Promise<string> {
	const key = await crypto.subtle.importKey(
		"raw",
		encoder.encode(secret),
		{ name: "HMAC", hash: "SHA-256" },
		false,
		["sign"],
	);
	const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(text)));
	return Array.from(mac, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** The x-tollbooth-signature value for `body` sent at `timestampSeconds`. */
export async function signWebhook(
	secret: string,
	body: string,
	timestampSeconds: number,
): Promise<string> {
	return `t=${timestampSeconds},v1=${await hmacHex(secret, `${timestampSeconds}.${body}`)}`;
}

/** A receiver's check: the signature matches and was made within `toleranceSeconds` of now. */
export async function verifyWebhook(
	secret: string,
	body: string,
	header: string,
	nowSeconds: number,
	toleranceSeconds = 300,
): Promise<boolean> {
	const fields = new Map(
		header.split(",").map((part) => {
			const at = part.indexOf("=");
			return [part.slice(0, at).trim(), part.slice(at + 1).trim()] as const;
		}),
	);
	const timestamp = Number(fields.get("t"));
	const given = fields.get("v1");
	if (!Number.isInteger(timestamp) || !given) return false;
	if (Math.abs(nowSeconds - timestamp) > toleranceSeconds) return false;
	const expected = await hmacHex(secret, `${timestamp}.${body}`);
	// Compared in full whatever the first difference, so timing tells nothing.
	let difference = expected.length ^ given.length;
	for (let i = 0; i < expected.length; i++) {
		difference |= expected.charCodeAt(i) ^ (given.charCodeAt(i) || 0);
	}
	return difference === 0;
}
