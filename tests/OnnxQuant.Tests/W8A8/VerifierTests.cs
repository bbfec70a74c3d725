using OnnxQuant.Analysis;
using OnnxQuant.Calibrate.Evaluation;
using OnnxQuant.Calibrate.Sessions;
using OnnxQuant.Calibrate.Verification;
using OnnxQuant.Fixtures;
using OnnxQuant.IO;
using OnnxQuant.Passes;
using OnnxQuant.Passes.W8A8;
using OnnxQuant.Tests.Smoothing;
using OnnxQuant.Tests.Cli;

namespace OnnxQuant.Tests.W8A8;

public class VerifierTests
{
    private static readonly SessionSettings Cpu = new() { Device = ExecutionDevice.Cpu, Threads = 1 };
    private static string AustenLm => Path.Combine(CliHarness.RepoRoot(), "models", "austen-lm", "model.onnx");

    [Fact]
    public void ACausalLmComparedWithItselfAgreesEverywhere()
    {
        var report = Verifier.Compare(AustenLm, AustenLm, new VerifyOptions { Windows = 2, WindowLength = 64, Session = Cpu });
        Assert.Equal(ModelTask.CausalLm, report.Kind);
        Assert.Equal("persuasion.txt", report.Data);
        Assert.Equal(2, report.Samples);
        Assert.Equal(128, report.Tokens);
        Assert.Equal(0, report.RelativeError);
        Assert.Equal(1.0, report.Top1Agreement);
        Assert.Equal(report.PerplexityOriginal, report.PerplexityEmitted);
        // The model's held-out perplexity is ~77 on all of Persuasion (models/austen-lm/README.md); two windows land near it.
        Assert.InRange(report.PerplexityOriginal!.Value, 30, 200);
    }

    [Fact]
    public void AQuantizedCausalLmShowsItsErrorInEveryMetric()
    {
        using var folder = new TempFolder();
        string output = folder.File("model.sq.onnx");
        using (var model = ModelFile.Load(AustenLm))
        {
            var stats = W8A8TestKit.Calibrate(model, 4096, samples: 4, length: 64);
            // A coarse naive rewrite: the error must show up.
            W8A8TestKit.Quantize(model, stats, new W8A8Options { ReducedRangeWeights = true }, smooth: null);
            ModelFile.Save(model, output);
        }
        var report = Verifier.Compare(AustenLm, output, new VerifyOptions { Windows = 2, WindowLength = 64, Session = Cpu });
        Assert.InRange(report.RelativeError, 1e-4, 0.5);
        Assert.InRange(report.Top1Agreement!.Value, 0.5, 0.9999);
        Assert.NotEqual(report.PerplexityOriginal, report.PerplexityEmitted);
        Assert.InRange(report.PerplexityEmitted!.Value / report.PerplexityOriginal!.Value, 0.8, 1.5);
    }

    [Fact]
    public void AnEncoderIsComparedByTheCosineOfMeanPooledEmbeddings()
    {
        using var folder = new TempFolder();
        var options = new FixtureOptions { Family = FixtureFamily.Bert, Layers = 1, Vocab = 64, OutlierChannels = 2, Seed = 3 };
        string original = FixtureModels.Save(options, folder.Path);
        File.WriteAllLines(folder.File("vocab.txt"), TinyWordPieceVocab(options.Vocab));
        string quantized = folder.File("model.sq.onnx");
        using (var model = ModelFile.Load(original))
        {
            var stats = W8A8TestKit.Calibrate(model, options.Vocab, samples: 4);
            W8A8TestKit.Quantize(model, stats, new W8A8Options(), new SmoothQuantOptions { InsertMul = true });
            ModelFile.Save(model, quantized);
        }
        var verify = new VerifyOptions { Sentences = 12, Session = Cpu };
        var same = Verifier.Compare(original, original, verify);
        Assert.Equal(ModelTask.Encoder, same.Kind);
        Assert.Equal(12, same.Samples);
        Assert.Equal(1.0, same.MeanCosine!.Value, 6);
        Assert.Null(same.PerplexityOriginal);

        var report = Verifier.Compare(original, quantized, verify);
        Assert.InRange(report.MeanCosine!.Value, 0.9, 0.999999);
        Assert.True(report.MinCosine <= report.MeanCosine);
        Assert.True(report.RelativeError > 0);
    }

    [Fact]
    public void SentencesAreEvenlySpacedAndWithinTheWordLimits()
    {
        string text = string.Join("\n", Enumerable.Range(0, 100).Select(i => $"Sentence number {i} has exactly seven words. Short one."));
        var sentences = HeldOutText.Sentences(text, 10);
        Assert.Equal(10, sentences.Count);
        Assert.All(sentences, s => Assert.Equal(7, s.Split(' ').Length));
        Assert.Equal("Sentence number 0 has exactly seven words.", sentences[0]);
        Assert.Equal("Sentence number 90 has exactly seven words.", sentences[9]);
    }

    // [PAD] [UNK] [CLS] [SEP] [MASK], the letters and their ## continuations: every id stays below the fixture's vocab.
    private static IEnumerable<string> TinyWordPieceVocab(int size)
    {
        var tokens = new List<string> { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" };
        tokens.AddRange(Enumerable.Range('a', 26).Select(c => ((char)c).ToString()));
        tokens.AddRange(Enumerable.Range('a', 26).Select(c => "##" + (char)c));
        tokens.AddRange([".", ",", ";", "!", "?", "'", "\""]);
        return tokens.Take(size);
    }
}
