using OnnxQuant.Fixtures;
using OnnxQuant.Tests.Cli;

namespace OnnxQuant.Tests.Context;

/// <summary>
/// Issue 11 on a TorchScript-style causal LM with dynamic input dims and a fixed RoPE table shorter than 512 rows:
/// `smooth` and `awq` with no options clamp to the table, say so and verify (#1); a length given above it is a usage
/// error naming the limit; hints name options the command has (#2); a token id past the vocabulary is bad input (#5).
/// </summary>
public sealed class ContextCliTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    /// <summary>The RoPE fixture with models/tiny-llama's tokenizer beside it (its vocabulary, 4096).</summary>
    private string RopeModel(int rows) =>
        FixtureModels.Save(new FixtureOptions { RopeRows = rows, Vocab = 4096, OutlierChannels = 3, Seed = 5 }, WithTinyLlamaTokenizer(_temp.File($"rope{rows}")));

    /// <summary>Creates <paramref name="folder"/> with models/tiny-llama's tokenizer files in it and returns it.</summary>
    internal static string WithTinyLlamaTokenizer(string folder)
    {
        Directory.CreateDirectory(folder);
        foreach (var name in new[] { "vocab.json", "merges.txt" })
            File.Copy(Path.Combine(CliHarness.RepoRoot(), "models", "tiny-llama", name), Path.Combine(folder, name));
        return folder;
    }

    private static string Flat(string text) => string.Join(" ", text.Split('\n').Select(l => l.Trim()));

    [Theory]
    [InlineData("smooth", 128)]
    [InlineData("smooth", 256)]
    [InlineData("awq", 128)]
    [InlineData("awq", 256)]
    public void With_no_options_a_short_rope_model_is_calibrated_and_verified_at_its_table_length(string command, int rows)
    {
        string model = RopeModel(rows);

        var result = CliHarness.Run(command, model, "--json");

        Assert.True(result.ExitCode == 0, result.Error);
        string error = Flat(result.Error);
        Assert.Contains($"note: {model} runs at most {rows} tokens per sequence (its table 'model.rotary_emb.cos_cached', sliced by the sequence length, has {rows} rows); calibrating on {rows} tokens", error);
        Assert.Contains($"calibrating on emma.txt: 128 x {rows} tokens", error);
        // Verification's windows (default 256 tokens) are clamped too, with their own notice, when the table is shorter.
        if (rows < 256)
            Assert.Contains($"verifying on windows of {rows} tokens", error);
        Assert.DoesNotContain("warning", error);
        var verification = result.Json().GetProperty("verification");
        Assert.True(verification.GetProperty("ran").GetBoolean(), result.Out);
        Assert.Equal(16L * rows, verification.GetProperty("tokens").GetInt64());
        double relative = verification.GetProperty("relative_error").GetDouble();
        double ratio = verification.GetProperty("perplexity_emitted").GetDouble() / verification.GetProperty("perplexity_original").GetDouble();
        // The tiny random fixture's logits are nearly flat, so their relative error is large while perplexity barely moves.
        // Measured: smooth 0.057 / 0.060 (top-1 0.89 / 0.88), awq 0.270 / 0.268 (top-1 0.56 / 0.57) at 128 / 256 rows.
        Assert.True(relative < (command == "smooth" ? 0.08 : 0.32), $"{command} on RoPE {rows}: relative logits error {relative}");
        Assert.InRange(ratio, 0.99, 1.02);
        Assert.True(verification.GetProperty("top1_agreement").GetDouble() > (command == "smooth" ? 0.85 : 0.5), result.Out);
    }

    [Fact]
    public void A_seq_len_given_above_the_table_is_a_usage_error_naming_the_limit()
    {
        string model = RopeModel(128);

        var result = CliHarness.Run("smooth", model, "--seq-len", "512");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains($"error: {model}: runs at most 128 tokens per sequence", Flat(result.Error));
        Assert.Contains("--seq-len 512 is longer. Give --seq-len 128 or less", Flat(result.Error));
        Assert.False(File.Exists(Path.ChangeExtension(model, ".sq.onnx")));
    }

    [Fact]
    public void Awq_takes_verify_length_and_a_verify_length_above_the_table_is_refused_before_calibrating()
    {
        string model = RopeModel(128);

        var result = CliHarness.Run("awq", model, "--method", "rtn", "--verify-length", "200");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("--verify-length 200 is longer. Give --verify-length 128 or less", Flat(result.Error));
        Assert.DoesNotContain("calibrating", result.Error);
    }

    [Fact]
    public void Awq_verifies_with_verify_samples_and_verify_length_like_smooth()
    {
        string model = RopeModel(128);

        var result = CliHarness.Run("awq", model, "--method", "rtn", "--verify-samples", "2", "--verify-length", "40", "--json");

        Assert.True(result.ExitCode == 0, result.Error);
        Assert.Equal(80, result.Json().GetProperty("verification").GetProperty("tokens").GetInt64());
    }

    [Fact]
    public void Eval_refuses_a_context_above_the_table_naming_its_own_option()
    {
        string model = RopeModel(128);

        var result = CliHarness.Run("eval", model, "--context", "512");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("--context 512 is longer. Give --context 128 or less", Flat(result.Error));
        Assert.DoesNotContain("--seq-len", result.Error);
        Assert.DoesNotContain("--verify-length", result.Error);
    }

    [Fact]
    public void Eval_without_a_tokenizer_is_not_told_to_pass_ids_with_data_which_takes_only_text_there()
    {
        string folder = _temp.File("bare");
        string model = FixtureModels.Save(new FixtureOptions { RopeRows = 128 }, folder);

        var result = CliHarness.Run("eval", model, "--context", "64");

        Assert.Equal(3, result.ExitCode);
        string error = Flat(result.Error);
        Assert.Contains("no tokenizer found", error);
        Assert.Contains("--tokenizer", error);
        Assert.DoesNotContain("--data", error);
    }

    [Fact]
    public void A_fixed_sequence_dimension_is_hinted_with_the_commands_own_option()
    {
        // A static [1, 64] input: calibrating at 32 tokens cannot fill it; smooth has --seq-len but no --batch.
        string folder = _temp.File("static");
        Directory.CreateDirectory(folder);
        using (var model = FixtureModels.BuildModel(new FixtureOptions()))
        {
            foreach (var input in model.Graph.Inputs)
            {
                var dims = input.Type.TensorType.Shape.Dim;
                dims[0] = new Onnx.TensorShapeProto.Types.Dimension { DimValue = 1 };
                dims[1] = new Onnx.TensorShapeProto.Types.Dimension { DimValue = 64 };
            }
            OnnxQuant.IO.ModelFile.Save(model, Path.Combine(folder, "model.onnx"));
        }
        string ids = _temp.File("calib.ids");
        File.WriteAllText(ids, string.Join(" ", Enumerable.Range(0, 400).Select(i => i % 256)));

        var result = CliHarness.Run("smooth", Path.Combine(folder, "model.onnx"), "--data", ids, "--samples", "2", "--seq-len", "32", "--no-verify");

        Assert.Equal(4, result.ExitCode);
        Assert.Contains("its dimension 1 is fixed at 64 but this run needs 32 (set --seq-len 64)", Flat(result.Error));
        Assert.DoesNotContain("--batch", result.Error);
    }

    [Fact]
    public void A_token_id_past_the_vocabulary_is_bad_input_naming_the_file_and_the_id()
    {
        string model = RopeModel(128);
        string ids = _temp.File("calib.ids");
        File.WriteAllText(ids, string.Join(" ", Enumerable.Range(0, 600).Select(i => i == 321 ? 5000 : i)));

        var result = CliHarness.Run("smooth", model, "--data", ids, "--samples", "9", "--seq-len", "64", "--no-verify");

        Assert.Equal(3, result.ExitCode);
        string error = Flat(result.Error);
        Assert.Contains($"error: {ids}: token id 5000 (id 322 of it) is not below the vocabulary of {model}", error);
        Assert.Contains("its embedding table 'model.embed_tokens.weight' has 4096 rows", error);
        Assert.Contains("--data", error);
        Assert.DoesNotContain("Gather", error);
    }
}
