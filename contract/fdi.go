package contract

// Statuses of the FDI's JSON answers ({"status": ..., ...}), as SuperTokens' frontend SDKs and
// the hosted pages branch on them.
const (
	StatusOK                            = "OK"
	StatusGeneralError                  = "GENERAL_ERROR"
	StatusFieldError                    = "FIELD_ERROR"
	StatusWrongCredentials              = "WRONG_CREDENTIALS_ERROR"
	StatusSignInUpNotAllowed            = "SIGN_IN_UP_NOT_ALLOWED"
	StatusSignInNotAllowed              = "SIGN_IN_NOT_ALLOWED"
	StatusSignUpNotAllowed              = "SIGN_UP_NOT_ALLOWED"
	StatusRestartFlow                   = "RESTART_FLOW_ERROR"
	StatusIncorrectUserInputCode        = "INCORRECT_USER_INPUT_CODE_ERROR"
	StatusExpiredUserInputCode          = "EXPIRED_USER_INPUT_CODE_ERROR"
	StatusLimitReached                  = "LIMIT_REACHED_ERROR"
	StatusInvalidTOTP                   = "INVALID_TOTP_ERROR"
	StatusUnknownDevice                 = "UNKNOWN_DEVICE_ERROR"
	StatusUnknownUserID                 = "UNKNOWN_USER_ID_ERROR"
	StatusDeviceAlreadyExists           = "DEVICE_ALREADY_EXISTS_ERROR"
	StatusInvalidRecoveryCode           = "INVALID_RECOVERY_CODE_ERROR"
	StatusNoRecoveryCodes               = "NO_RECOVERY_CODES_ERROR"
	StatusResetPasswordInvalidToken     = "RESET_PASSWORD_INVALID_TOKEN_ERROR"
	StatusEmailVerificationInvalidToken = "EMAIL_VERIFICATION_INVALID_TOKEN_ERROR"
	StatusEmailAlreadyVerified          = "EMAIL_ALREADY_VERIFIED_ERROR"
	StatusEmailAlreadyExists            = "EMAIL_ALREADY_EXISTS_ERROR"
	StatusInvalidEmail                  = "INVALID_EMAIL_ERROR"
	StatusOptionsNotFound               = "OPTIONS_NOT_FOUND_ERROR"
	StatusInvalidCredentials            = "INVALID_CREDENTIALS_ERROR"
	StatusInvalidAuthenticator          = "INVALID_AUTHENTICATOR_ERROR"
	StatusRecoverAccountTokenInvalid    = "RECOVER_ACCOUNT_TOKEN_INVALID_ERROR"
	StatusCredentialNotFound            = "CREDENTIAL_NOT_FOUND_ERROR"
)
