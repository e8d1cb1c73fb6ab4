// Worker entry: the fetch handler and the Durable Object classes.
import { DurableObject } from "cloudflare:workers";

export class Pool extends DurableObject<Env> {
	async ping(): Promise<string> {
		return "pong";
	}
}

export default {
	async fetch(): Promise<Response> {
		return new Response("tollbooth");
	},
} satisfies ExportedHandler<Env>;
