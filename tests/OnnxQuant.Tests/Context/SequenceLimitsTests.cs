using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using OnnxQuant.Analysis;
using OnnxQuant.Calibrate;
using OnnxQuant.Calibrate.Recording;
using OnnxQuant.Calibrate.Sessions;
using OnnxQuant.Fixtures;
using OnnxQuant.IO;
using static OnnxQuant.Tests.Calibrate.CalibrationTestSupport;

namespace OnnxQuant.Tests.Context;

/// <summary>
/// The longest sequence a model runs (issue 11, #1): read from the structure (a sliced RoPE table, a gathered position
/// table), or found by the probe after a run fails; and ONNX Runtime's failure in our words.
/// </summary>
public sealed class SequenceLimitsTests
{
    [Fact]
    public void A_rope_table_sliced_by_the_sequence_length_sets_the_limit_and_the_token_table_the_vocabulary()
    {
        using var model = FixtureModels.BuildModel(new FixtureOptions { RopeRows = 128, Vocab = 300 });

        var limits = SequenceLimits.Find(model.Graph);

        Assert.NotNull(limits.Context);
        Assert.Equal(128, limits.Context!.Length);
        Assert.Equal(ContextLimitSource.SlicedTable, limits.Context.Source);
        Assert.Equal("model.rotary_emb.cos_cached", limits.Context.Where);
        Assert.Equal(300, limits.Vocabulary);
        Assert.Equal("model.embed_tokens.weight", limits.EmbeddingTable);
    }

    [Fact]
    public void A_position_table_gathered_by_position_ids_sets_the_limit_and_a_model_without_one_has_none()
    {
        using var genAi = FixtureModels.BuildModel(new FixtureOptions { Family = FixtureFamily.GenAiLlama, MaxPositions = 96, KvCache = true });
        using var plain = FixtureModels.BuildModel(new FixtureOptions());

        var limit = SequenceLimits.Find(genAi.Graph).Context;

        Assert.Equal((96, ContextLimitSource.PositionTable, "model.embed_positions.weight"), (limit?.Length, limit?.Source, limit?.Where));
        Assert.Null(SequenceLimits.Find(plain.Graph).Context);
        Assert.Equal(256, SequenceLimits.Find(plain.Graph).Vocabulary);
    }

    [Fact]
    public void Calibrating_past_a_limit_the_structure_does_not_show_finds_it_by_probing()
    {
        // The Calibrator does not read the structure: a run at 200 tokens fails and the probe bisects to the table's 128.
        var proto = FixtureModels.Build(new FixtureOptions { RopeRows = 128 });

        var e = Assert.Throws<ContextTooLongException>(() => CalibrateFixture(proto, RandomIds(samples: 2, seq: 200, vocab: 256)));

        Assert.Equal(128, e.Limit.Length);
        Assert.Equal(ContextLimitSource.Probe, e.Limit.Source);
        Assert.Equal(ExitCode.Usage, e.ExitCode);
        Assert.Contains("runs at most 128 tokens per sequence", e.Message);
        Assert.Contains("--seq-len 200 is longer. Give --seq-len 128 or less", e.Message);
    }

    [Fact]
    public void An_ort_broadcast_failure_becomes_a_paragraph_naming_the_stage_option_and_the_node()
    {
        var proto = FixtureModels.Build(new FixtureOptions { RopeRows = 128 });
        using var session = new InferenceSession(proto.ToByteArray(), new SessionOptions { LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL });
        var ids = Enumerable.Range(0, 160).Select(i => (long)(i % 256)).ToArray();
        using var input = OrtValue.CreateTensorValueFromMemory(ids, [1, ids.Length]);
        using var mask = OrtValue.CreateTensorValueFromMemory(Enumerable.Repeat(1L, ids.Length).ToArray(), [1, ids.Length]);
        var failure = Assert.Throws<OnnxRuntimeException>(() => session.Run(new RunOptions(), ["input_ids", "attention_mask"], [input, mask], ["logits"]));

        var translated = OrtFailures.Translate(failure, "model.onnx", RunStage.Verification, 160, "a held-out window");

        Assert.Equal(OrtFailureKind.SequenceTooLong, OrtFailures.Classify(failure.Message));
        Assert.Equal(ExitCode.Usage, translated.ExitCode);
        Assert.Contains("could not run a held-out window of 160 tokens", translated.Message);
        Assert.Contains("give a shorter --verify-length", translated.Message);
        Assert.Matches("in node '/model/layers.0/self_attn/[qk]_rope/Mul[^']*', a Mul", translated.Message);
        Assert.DoesNotContain(".h:", translated.Message);
        Assert.DoesNotContain("Status Message", translated.Message);
    }
}
