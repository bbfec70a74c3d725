using System.Text.Json;
using OnnxQuant.Analysis;
using OnnxQuant.Passes;

namespace OnnxQuant.Recipes;

/// <summary>fold-weights: no options; it prepares every linear some pass quantizes.</summary>
public sealed class FoldWeightsDeclaration : PassDeclaration<FoldWeightsSpec>
{
    public override string Name => "fold-weights";

    private protected override FoldWeightsSpec ReadSpec(JsonFields f) => new(new LinearSelection());

    protected override void Write(Utf8JsonWriter w, FoldWeightsSpec spec)
    {
    }

    protected override FoldWeightsSpec Bind(FoldWeightsSpec spec, RecipeBinding binding) => new(binding.Quantized);
}
