/**
 * NATS connection settings — credentials and TLS — in the form `wavekv serve --nats-conf
 * FILE` reads, and their translation into the client's connect options. Secrets live in
 * a file (mode 0600 is the operator's business), never on the command line, so `ps` and
 * the start-up log never show them; errors name the line and key, never a value.
 *
 *   # nats.conf: one `key = value` a line, `#` comments
 *   user = wavekv
 *   password = s3cret          # or: token = ...   or: nkey = SUA...(seed)   or: creds = /path/user.creds
 *   tls_ca = /etc/nats/ca.pem  # TLS: trust this CA (tls_cert / tls_key: a client certificate)
 *
 *   const conf = parseNatsConf(readFileSync(file, "utf8"));
 *   await NatsTransport.connect({ ..., conf });
 *
 * @module
 */
import { WaveKVError } from "../core/errors.js";

export interface NatsConf {
  user?: string;
  password?: string;
  token?: string;
  /** An nkey user seed (`SU…`): the client signs the server's nonce with it. */
  nkey?: string;
  /** The bytes of a NATS `.creds` file (user JWT + seed); `parseNatsConf` leaves the path in `credsFile`. */
  creds?: Uint8Array;
  credsFile?: string;
  /** TLS: CA certificate file (a server certificate signed by it is trusted). */
  tls_ca?: string;
  /** TLS client certificate and key files (servers that verify clients). */
  tls_cert?: string;
  tls_key?: string;
}

const KEYS = new Set(["user", "password", "token", "nkey", "creds", "tls_ca", "tls_cert", "tls_key"]);

/** `key = value` lines into settings; an unknown key, a repeated key or a mix of schemes is INVALID_ARGUMENT. */
export function parseNatsConf(text: string): NatsConf {
  const out: Record<string, string> = {};
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/^\s*#.*$/, "").trim();
    if (line === "") return;
    const m = /^([a-z_]+)\s*[=:]\s*(.*?)\s*$/.exec(line);
    if (!m) throw new WaveKVError("INVALID_ARGUMENT", `NATS settings line ${i + 1}: expected \`key = value\``);
    const [, key, value] = m as unknown as [string, string, string];
    if (!KEYS.has(key)) throw new WaveKVError("INVALID_ARGUMENT", `NATS settings line ${i + 1}: unknown key ${key} (known: ${[...KEYS].join(", ")})`);
    if (key in out) throw new WaveKVError("INVALID_ARGUMENT", `NATS settings line ${i + 1}: ${key} given twice`);
    if (value === "") throw new WaveKVError("INVALID_ARGUMENT", `NATS settings line ${i + 1}: ${key} is empty`);
    out[key] = value;
  });
  const schemes = ["user", "token", "nkey", "creds"].filter((k) => k in out);
  if (schemes.length > 1) throw new WaveKVError("INVALID_ARGUMENT", `NATS settings: one credential scheme, got ${schemes.join(" and ")}`);
  if (("user" in out) !== ("password" in out)) throw new WaveKVError("INVALID_ARGUMENT", "NATS settings: user and password go together");
  if (("tls_cert" in out) !== ("tls_key" in out)) throw new WaveKVError("INVALID_ARGUMENT", "NATS settings: tls_cert and tls_key go together");
  const { creds, ...rest } = out;
  return creds === undefined ? rest : { ...rest, credsFile: creds };
}

/** What the client's `connect` needs for `conf`; `auth` holds the client's authenticator factories. */
export function clientOptions(conf: NatsConf, auth: { nkeyAuthenticator(seed: Uint8Array): unknown; credsAuthenticator(creds: Uint8Array): unknown }): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  if (conf.user !== undefined) Object.assign(o, { user: conf.user, pass: conf.password });
  if (conf.token !== undefined) o.token = conf.token;
  if (conf.nkey !== undefined) o.authenticator = auth.nkeyAuthenticator(new TextEncoder().encode(conf.nkey));
  if (conf.creds !== undefined) o.authenticator = auth.credsAuthenticator(conf.creds);
  else if (conf.credsFile !== undefined) throw new WaveKVError("INVALID_ARGUMENT", "NATS settings: creds names a file; read it into `creds` first");
  if (conf.tls_ca !== undefined || conf.tls_cert !== undefined) {
    o.tls = { ...(conf.tls_ca !== undefined && { caFile: conf.tls_ca }), ...(conf.tls_cert !== undefined && { certFile: conf.tls_cert, keyFile: conf.tls_key }) };
  }
  return o;
}
