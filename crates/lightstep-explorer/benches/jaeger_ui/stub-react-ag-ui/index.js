// Stands in for @assistant-ui/react-ag-ui when building Jaeger UI v2.20.0 for the comparison
// (see build_jaeger_ui.sh for why the real package cannot be used). Jaeger UI calls
// useAgUiRuntime only when its AI assistant is configured, which the comparison never does, so
// failing loudly is enough.
export function useAgUiRuntime() {
  throw new Error('@assistant-ui/react-ag-ui stub: the AI assistant is not part of this build');
}
