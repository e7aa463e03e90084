// oidc-provider (npm, https://github.com/panva/node-oidc-provider) as the peer of fhirgate's
// token endpoint: one confidential client, the client-credentials grant, JWT (ES256) access
// tokens through resource indicators. Arguments: port, client id, client secret.
// benchmarks/oauth_peers.py copies it next to the npm install in .cache/oidc-provider and runs it
// there (ES modules find packages from the script's own folder).
import { generateKeyPairSync } from "node:crypto";
import Provider from "oidc-provider";

const [port, clientId, clientSecret] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const resource = "urn:fhirgate:bench";
const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
const signingKey = { ...privateKey.export({ format: "jwk" }), alg: "ES256", use: "sig", kid: "bench" };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ["client_credentials"],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: "client_secret_basic",
      id_token_signed_response_alg: "ES256",
      scope: "system/Patient.rs",
    },
  ],
  jwks: { keys: [signingKey] },
  scopes: ["system/Patient.rs"],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: "system/Patient.rs",
        audience: resource,
        accessTokenTTL: 300,
        accessTokenFormat: "jwt",
        jwt: { sign: { alg: "ES256" } },
      }),
    },
  },
});
provider.proxy = false;
provider.listen(Number(port), "127.0.0.1", () => console.log(`oidc-provider listening on ${issuer}`));
