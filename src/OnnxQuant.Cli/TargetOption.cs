using System.CommandLine;
using OnnxQuant.Placement;

namespace OnnxQuant.Cli;

/// <summary>The --target option of smooth and awq (README, "Targets").</summary>
public static class TargetOption
{
    public static Option<DeploymentTarget?> Create() => new("--target")
    {
        Description = "Where the model will run: cpu (W8A8 uint8 activations; W4 accuracy_level 4, symmetric), cuda (int8 s8 x s8; W4 blocks up to 128), tensorrt (QDQ). Picks the emitted forms' defaults and warns before writing when an emitted node has no kernel on that ONNX Runtime execution provider.",
    };

    /// <summary>The word the option takes for <paramref name="target"/>.</summary>
    public static string Word(DeploymentTarget target) => target.ToString().ToLowerInvariant();
}
