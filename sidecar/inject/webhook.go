package inject

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// Webhook paths, as the webhook configurations in config/webhook name them.
const (
	MutatePath   = "/mutate-v1-pod"
	ValidatePath = "/validate-v1-pod"
)

// The webhook configurations are written by hand in config/webhook/manifests.yaml (and the
// Helm chart), because both need an objectSelector on LabelInject and a namespaceSelector that
// excludes kube-system and the operator's namespace: a fail-closed webhook must never stand
// between the cluster and pods that did not opt in.

// Register serves the mutating and the validating pod webhook on the server.
func Register(server webhook.Server, scheme *runtime.Scheme, cfg Config) {
	dec := admission.NewDecoder(scheme)
	server.Register(MutatePath, &webhook.Admission{Handler: &Mutator{Config: cfg, decoder: dec}})
	server.Register(ValidatePath, &webhook.Admission{Handler: &Validator{Config: cfg, decoder: dec}})
}

// Mutator injects the proxy into opted-in pods. Its webhook fails open (failurePolicy
// Ignore): the Validator, which fails closed, refuses an opted-in pod it could not inject.
type Mutator struct {
	Config  Config
	decoder admission.Decoder
}

// Handle injects the proxy into the pod of a create request.
func (m *Mutator) Handle(ctx context.Context, req admission.Request) admission.Response {
	if m.Config.Excluded(req.Namespace) {
		return admission.Allowed("namespace is excluded from injection")
	}
	pod := &corev1.Pod{}
	if err := m.decoder.Decode(req, pod); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	changed, err := Inject(pod, m.Config)
	if errors.Is(err, ErrInvalidPod) {
		return admission.Denied(err.Error())
	}
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	if !changed {
		return admission.Allowed("nothing to inject")
	}
	name := pod.Name
	if name == "" {
		name = pod.GenerateName
	}
	log.FromContext(ctx).Info("Injected proxy", "namespace", req.Namespace, "pod", name, "tenant", pod.Annotations[AnnotationTenant])
	raw, err := json.Marshal(pod)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	return admission.PatchResponseFromRaw(req.Object.Raw, raw)
}

// Validator refuses opted-in pods that lack a correctly configured proxy.
type Validator struct {
	Config  Config
	decoder admission.Decoder
}

// Handle checks the pod of a create or update request.
func (v *Validator) Handle(_ context.Context, req admission.Request) admission.Response {
	if v.Config.Excluded(req.Namespace) || req.Operation == admissionv1.Delete {
		return admission.Allowed("")
	}
	pod := &corev1.Pod{}
	if err := v.decoder.Decode(req, pod); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if err := Check(pod, v.Config); err != nil {
		return admission.Denied(err.Error())
	}
	return admission.Allowed("")
}
