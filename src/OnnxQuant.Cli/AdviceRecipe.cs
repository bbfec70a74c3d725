using System.Text.Json;
using System.Text.Json.Nodes;
using OnnxQuant.Advice;
using OnnxQuant.Placement;
using OnnxQuant.Statistics;

namespace OnnxQuant.Cli;

/// <summary>The recipe (docs/recipes.md, schema version 1) that applies an advice: its passes, the linears kept in float, the calibration it measured on.</summary>
public static class AdviceRecipe
{
    public static JsonObject Build(AdviceReport report, CalibrationInfo calibration, bool includeLmHead)
    {
        var recommendation = report.Recommendation;
        var scheme = recommendation.Scheme;
        var passes = new JsonArray { new JsonObject { ["pass"] = "fold-weights" } };
        if (AdviceSchemes.IsW4(scheme))
        {
            if (scheme == AdviceScheme.W4Awq)
                passes.Add(new JsonObject { ["pass"] = "awq" });
            passes.Add(new JsonObject { ["pass"] = "w4-rewrite", ["blockSize"] = LayerEstimates.BlockSize });
        }
        else
        {
            if (scheme == AdviceScheme.W8A8SmoothQuant)
                passes.Add(new JsonObject { ["pass"] = "smoothquant", ["alpha"] = "auto" });
            var target = report.Target;
            var w8a8 = new JsonObject
            {
                ["pass"] = "w8a8",
                ["format"] = scheme == AdviceScheme.W8A8PerToken ? "dynamic" : target == DeploymentTarget.TensorRt ? "qdq" : "int8",
            };
            if (target == DeploymentTarget.Cpu && scheme != AdviceScheme.W8A8PerToken)
                w8a8["uint8Activations"] = true;
            passes.Add(w8a8);
        }
        var overrides = new JsonArray();
        foreach (string name in recommendation.KeepInFloat)
            overrides.Add(new JsonObject { ["match"] = name, ["scheme"] = "float" });
        var linears = new JsonObject { ["default"] = AdviceSchemes.IsW4(scheme) ? "w4" : "w8a8" };
        if (includeLmHead)
            linears["includeLmHead"] = true;
        if (overrides.Count > 0)
            linears["overrides"] = overrides;
        var recipe = new JsonObject { ["recipe"] = 1, ["passes"] = passes, ["linears"] = linears };
        // Per-token dynamic W8A8 and RTN read no statistics; the others calibrate as the advice did.
        if (scheme is not (AdviceScheme.W8A8PerToken or AdviceScheme.W4Rtn) && calibration.Samples > 0)
            recipe["calibration"] = new JsonObject { ["samples"] = calibration.Samples, ["seqLen"] = calibration.SequenceLength };
        return recipe;
    }

    public static string Format(JsonObject recipe) => recipe.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
}
