using System.CommandLine;
using OnnxQuant.Placement;

namespace OnnxQuant.Cli;

/// <summary>The --target option of smooth and awq (README, "Targets").</summary>
public static class TargetOption
{
    public static Option<DeploymentTarget?> Create() => new("--target")
    {
        Description = "Where the model will run: cpu (uint8 activations), cuda (int8 s8 x s8), tensorrt (QDQ). Picks smooth's --format defaults and warns before writing when an emitted node has no kernel on that ONNX Runtime execution provider.",
    };
}
