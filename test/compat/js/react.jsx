// supertokens-auth-react's prebuilt UI (pinned in package.json) as an application would mount
// it: sign-in and sign-up, the MFA factor chooser, TOTP and passkey screens under
// /sdk/react/auth, and a protected home page that shows what the app behind the sidecar sees.
// Shadow DOM is off so the tests can find the screens' fields.
import React, { useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import SuperTokens, { SuperTokensWrapper } from "supertokens-auth-react";
import { canHandleRoute, getRoutingComponent } from "supertokens-auth-react/ui";
import EmailPassword from "supertokens-auth-react/recipe/emailpassword";
import { EmailPasswordPreBuiltUI } from "supertokens-auth-react/recipe/emailpassword/prebuiltui";
import MultiFactorAuth from "supertokens-auth-react/recipe/multifactorauth";
import { MultiFactorAuthPreBuiltUI } from "supertokens-auth-react/recipe/multifactorauth/prebuiltui";
import TOTP from "supertokens-auth-react/recipe/totp";
import { TOTPPreBuiltUI } from "supertokens-auth-react/recipe/totp/prebuiltui";
import WebAuthn from "supertokens-auth-react/recipe/webauthn";
import { WebauthnPreBuiltUI } from "supertokens-auth-react/recipe/webauthn/prebuiltui";
import Session, { SessionAuth } from "supertokens-auth-react/recipe/session";

SuperTokens.init({
  appInfo: {
    appName: "Twofold compatibility",
    apiDomain: location.origin,
    websiteDomain: location.origin,
    apiBasePath: "/auth",
    websiteBasePath: "/sdk/react/auth",
  },
  useShadowDom: false,
  recipeList: [EmailPassword.init(), MultiFactorAuth.init(), TOTP.init(), WebAuthn.init(), Session.init()],
});

const screens = [EmailPasswordPreBuiltUI, MultiFactorAuthPreBuiltUI, TOTPPreBuiltUI, WebauthnPreBuiltUI];

function Home() {
  const [me, setMe] = useState(null);
  useEffect(() => {
    fetch("/api/me").then(async (r) => setMe({ code: r.status, body: r.status === 200 ? await r.json() : null }));
  }, []);
  if (me === null) return <p>Loading</p>;
  return <p id="home" data-code={me.code} data-user={me.body ? me.body.userId : ""} data-factors={me.body ? me.body.factors : ""}>Home</p>;
}

function App() {
  if (canHandleRoute(screens)) return getRoutingComponent(screens);
  return (
    <SessionAuth>
      <Home />
    </SessionAuth>
  );
}

createRoot(document.getElementById("root")).render(
  <SuperTokensWrapper>
    <App />
  </SuperTokensWrapper>,
);
