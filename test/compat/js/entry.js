// The SuperTokens frontend SDK (supertokens-web-js, pinned in package.json) as the
// compatibility tests drive it: every recipe initialised against the sidecar's origin, and one
// generic entry point, compat.call(recipe, function, input), that runs an SDK function and
// returns its answer without the fetch response (which does not cross into the test).
import SuperTokens from "supertokens-web-js";
import Session from "supertokens-web-js/recipe/session";
import EmailPassword from "supertokens-web-js/recipe/emailpassword";
import EmailVerification from "supertokens-web-js/recipe/emailverification";
import MultiFactorAuth from "supertokens-web-js/recipe/multifactorauth";
import Multitenancy from "supertokens-web-js/recipe/multitenancy";
import Passwordless from "supertokens-web-js/recipe/passwordless";
import ThirdParty from "supertokens-web-js/recipe/thirdparty";
import TOTP from "supertokens-web-js/recipe/totp";
import WebAuthn from "supertokens-web-js/recipe/webauthn";

const recipes = { Session, EmailPassword, EmailVerification, MultiFactorAuth, Multitenancy, Passwordless, ThirdParty, TOTP, WebAuthn };

function plain(v) {
  if (v === undefined) return null;
  if (v instanceof Error) return { error: v.name + ": " + v.message };
  if (v === null || typeof v !== "object") return v;
  const out = Array.isArray(v) ? [] : {};
  for (const [k, x] of Object.entries(v)) {
    if (k === "fetchResponse") continue;
    out[k] = plain(x);
  }
  return out;
}

window.compat = {
  init(apiDomain) {
    SuperTokens.init({
      appInfo: { appName: "Twofold compatibility", apiDomain, apiBasePath: "/auth" },
      recipeList: [
        Session.init(), EmailPassword.init(), EmailVerification.init(), MultiFactorAuth.init(), Multitenancy.init(),
        Passwordless.init(), ThirdParty.init(), TOTP.init(), WebAuthn.init(),
      ],
    });
    return "ok";
  },
  async call(recipe, fn, input) {
    try {
      return plain(await recipes[recipe][fn](input));
    } catch (e) {
      // SuperTokens' errors (STGeneralError, a 4xx) carry what the server said.
      return { thrown: e.name || "Error", message: e.message, isSuperTokensGeneralError: e.isSuperTokensGeneralError === true };
    }
  },
};
