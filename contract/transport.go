package contract

// Names of the cookies and headers of SuperTokens' session transport: the core sets them, the
// sidecar reads the access token from the Authorization header or CookieAccessToken.
const (
	CookieAccessToken  = "sAccessToken"
	CookieRefreshToken = "sRefreshToken"
	HeaderAuthMode     = "st-auth-mode"
	HeaderAccessToken  = "st-access-token"
	HeaderRefreshToken = "st-refresh-token"
	HeaderFrontToken   = "front-token"
)

// Identity headers the sidecar sets on requests it forwards to the app. Every incoming header
// starting with IdentityHeaderPrefix (any case, "_" counting as "-") is deleted first, on
// every path, so an app can trust them.
const (
	IdentityHeaderPrefix = "X-Twofold-"
	HeaderUserID         = "X-Twofold-User-Id"
	HeaderTenantID       = "X-Twofold-Tenant-Id"
	HeaderSession        = "X-Twofold-Session"
	HeaderFactors        = "X-Twofold-Factors"
)

// HeaderServedTenants is set by a sidecar on every request it forwards to the core: the
// comma-separated tenant ids whose sign-in the app's origin serves (the sidecar's tenant and
// its extra auth tenants). The hosted pages refuse any other tenant there, so a form field
// cannot sign a browser into another tenant on this app's origin. The sidecar deletes the
// header from what clients send (it carries the identity prefix).
const HeaderServedTenants = "X-Twofold-Served-Tenants"
