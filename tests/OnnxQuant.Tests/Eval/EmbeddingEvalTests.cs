using OnnxQuant.Analysis;
using OnnxQuant.Calibrate.Data;
using OnnxQuant.Calibrate.Evaluation;
using OnnxQuant.Calibrate.Sessions;
using OnnxQuant.Fixtures;

namespace OnnxQuant.Tests.Eval;

public class EmbeddingEvalTests
{
    [Fact]
    public void CosineAndNeighbourAgreementEqualAnIndependentComputation()
    {
        using var folder = new TempFolder();
        string model = FixtureModels.Save(EvalTestData.Bert(0), folder.Path, "a.onnx");
        string other = FixtureModels.Save(EvalTestData.Bert(7), folder.Path, "b.onnx");
        EvalTestData.WriteLetterVocab(folder.Path);
        string text = EvalTestData.PersuasionExcerpt(folder, 20000);
        var options = new EvalOptions
        {
            TextPath = text, ReferencePath = other, Sentences = 24, MaxSentenceTokens = 48,
            Session = new SessionSettings { Device = ExecutionDevice.Cpu, Threads = 1 },
        };

        var report = Evaluator.Run(model, options);

        // The same sentences as eval (HeldOutText's sample builder), measured here with plain loops in double.
        var tokenizer = TokenizerLoader.Load(null, model);
        var samples = HeldOutText.SentenceSamples(text, tokenizer, 24, 48);
        Assert.Equal(24, samples.Count);
        Assert.All(samples, s => Assert.Equal((2, 3), (s[0], s[^1])));
        var a = new List<double[]>();
        var b = new List<double[]>();
        using (var ra = EvalTestData.Runner(model))
        using (var rb = EvalTestData.Runner(other))
            foreach (var s in samples)
            {
                a.Add(EvalTestData.MeanPool(EvalTestData.Logits(ra, s, "last_hidden_state"), s.Length));
                b.Add(EvalTestData.MeanPool(EvalTestData.Logits(rb, s, "last_hidden_state"), s.Length));
            }
        var cosines = a.Zip(b, EvalTestData.Cosine).ToList();
        int Nearest(List<double[]> set, int i) =>
            Enumerable.Range(0, set.Count).Where(j => j != i).MaxBy(j => EvalTestData.Cosine(set[i], set[j]));
        double agreement = Enumerable.Range(0, a.Count).Count(i => Nearest(a, i) == Nearest(b, i)) / (double)a.Count;

        var e = report.Embedding!;
        Assert.Equal(ModelTask.Encoder, report.Kind);
        Assert.Equal("last_hidden_state", report.Output);
        Assert.Equal(24, e.Sentences);
        Assert.Equal(cosines.Average(), e.MeanCosine, 1e-5);
        Assert.Equal(cosines.Min(), e.MinCosine, 1e-5);
        Assert.Equal(agreement, e.NeighbourAgreement, 12);
        Assert.True(e.MeanCosine < 0.99, $"differently seeded encoders should disagree, mean cosine {e.MeanCosine}");
        Assert.Null(report.Perplexity);
    }

    [Fact]
    public void AnEncoderAgainstItselfAgreesPerfectly()
    {
        using var folder = new TempFolder();
        string model = FixtureModels.Save(EvalTestData.Bert(3), folder.Path);
        EvalTestData.WriteLetterVocab(folder.Path);
        string text = EvalTestData.PersuasionExcerpt(folder, 8000);

        var e = Evaluator.Run(model, new EvalOptions { TextPath = text, ReferencePath = model, Sentences = 12, Session = new SessionSettings { Device = ExecutionDevice.Cpu } }).Embedding!;

        Assert.Equal((1.0, 0.0), (e.NeighbourAgreement, e.RelativeError));
        Assert.Equal(1.0, e.MinCosine, 1e-6);
    }
}
