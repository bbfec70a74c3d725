using OnnxQuant.Analysis;
using OnnxQuant.IO;
using OnnxQuant.Fixtures;
using OnnxQuant.Tests.Eval;

namespace OnnxQuant.Tests.Analysis;

/// <summary>
/// Issue 11, failure 4: causal LM or encoder comes from the graph (an output over the embedding's vocabulary and a
/// causal mask), not from an output named "logits" (the command-level check is in EvalCommandTests).
/// </summary>
public sealed class ModelTaskDetectionTests
{
    [Theory]
    [InlineData(FixtureFamily.TorchLlama, false, ModelTask.CausalLm, "logits")]
    [InlineData(FixtureFamily.GenAiLlama, true, ModelTask.CausalLm, "logits")]
    [InlineData(FixtureFamily.Bert, false, ModelTask.Encoder, "last_hidden_state")]
    public void Fixture_families_are_told_apart_by_structure(FixtureFamily family, bool kvCache, ModelTask expected, string output)
    {
        var options = new FixtureOptions { Family = family, Layers = 1, Hidden = 32, Heads = 2, Intermediate = 64, Vocab = 96, KvCache = kvCache };
        var verdict = ModelTaskDetection.Detect(FixtureModels.BuildModel(options).Graph);

        Assert.Equal((expected, output), (verdict.Task, verdict.Output));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_causal_lm_whose_logits_are_named_otherwise_is_a_causal_lm(bool symbolicVocab)
    {
        var verdict = ModelTaskDetection.Detect(OnnxModel.FromProto(EvalTestData.RenamedLm(symbolicVocab)).Graph);

        Assert.Equal((ModelTask.CausalLm, "output"), (verdict.Task, verdict.Output));
        Assert.Contains("4096-token vocabulary", verdict.Evidence);
        Assert.Contains("LessOrEqual", verdict.Evidence);
    }

    /// <summary>Issue 31: a head tied as Gather(Transpose(W_head)) has no embedding initializer; the table is found through the Transpose.</summary>
    [Fact]
    public void A_head_tied_through_a_transposed_gather_table_is_a_causal_lm_with_a_token_embedding()
    {
        var options = new FixtureOptions { Layers = 1, Hidden = 32, Heads = 2, Intermediate = 64, Vocab = 96, TiedHeadTransposed = true };
        using var model = FixtureModels.BuildModel(options);

        var verdict = ModelTaskDetection.Detect(model.Graph);
        var embedding = Assert.Single(TokenTables.Summaries(model.Graph));

        Assert.Equal((ModelTask.CausalLm, "logits"), (verdict.Task, verdict.Output));
        Assert.Contains("96-token vocabulary", verdict.Evidence);
        Assert.Equal((96, 32, 96L * 32 * 4), (embedding.Rows, embedding.Width, embedding.Bytes));
        Assert.Contains("Transpose", embedding.Form);
    }
}
