// The types of the browser package (pkg/tandem.d.ts), used as a TypeScript
// app would use them. Never run: types.test.mjs checks it with
// `tsc --noEmit --strict` (tsconfig.json beside this file). Each line after
// `@ts-expect-error` must fail to check: where a type is `any` or too loose,
// tsc reports the directive as unused, and the check fails.

import init, {
  WebSocketSession,
  type CloseInfo,
  type ConnectOptions,
  type Message,
} from "../../pkg/tandem.js";

export async function chat(url: string): Promise<CloseInfo> {
  await init();
  const options: ConnectOptions = { protocols: ["chat.v2", "chat"], timeout: 5000, maxMessageSize: null };
  const session: WebSocketSession = await WebSocketSession.connect(url, options);
  await WebSocketSession.connect(url);
  const protocol: string | undefined = session.protocol;
  await session.send(`hello over ${protocol ?? "no subprotocol"}`);
  await session.send(new Uint8Array([1, 2, 3]));
  await session.sendJson({ type: "move", at: [3, 4] });
  for (let message: Message | null; (message = await session.receive()) !== null; ) {
    if (message.type === "text") {
      const text: string = message.data;
      console.log(text.toUpperCase());
    } else {
      const bytes: Uint8Array = message.data;
      console.log(bytes.byteLength);
    }
  }
  await session.close(4000, "game over");
  await session.close();
  const info: CloseInfo = await session.closed;
  const code: number = info.code;
  const reason: string = info.reason;
  console.log(`closed: ${code} ${reason}`);
  session.free();
  return info;
}

export async function misuse(session: WebSocketSession): Promise<void> {
  // @ts-expect-error: send takes a string or a Uint8Array
  await session.send(42);
  // @ts-expect-error: protocols is an array of strings
  await WebSocketSession.connect("ws://127.0.0.1/", { protocols: "chat" });
  // @ts-expect-error: there is no option `protocol`
  await WebSocketSession.connect("ws://127.0.0.1/", { protocol: ["chat"] });
  // @ts-expect-error: timeout is a number of milliseconds
  await WebSocketSession.connect("ws://127.0.0.1/", { timeout: "5s" });
  const message = await session.receive();
  // @ts-expect-error: receive() gives null once the session has ended
  console.log(message.type);
  if (message !== null) {
    // @ts-expect-error: a string or bytes, until `type` says which
    const text: string = message.data;
    // @ts-expect-error: there are text and binary messages only
    if (message.type === "ping") console.log(text);
  }
  // @ts-expect-error: the close code is a number
  await session.close("1000");
  // @ts-expect-error: protocol is read-only
  session.protocol = "chat";
  // @ts-expect-error: closed is a promise of the info, not the info
  console.log(session.closed.code);
  // @ts-expect-error: no constructor: connect() opens a session
  new WebSocketSession();
}
