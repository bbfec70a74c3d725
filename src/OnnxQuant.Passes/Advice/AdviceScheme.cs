namespace OnnxQuant.Advice;

/// <summary>The quantization schemes `advise` measures (docs/architecture.md, "advise").</summary>
public enum AdviceScheme
{
    /// <summary>W8A8, static per-tensor activation scale from calibration, no smoothing (`smooth --alpha none`).</summary>
    W8A8Naive,
    /// <summary>W8A8 with SmoothQuant at the best alpha per group (`smooth`, alpha auto).</summary>
    W8A8SmoothQuant,
    /// <summary>W8A8 with per-token activation scales computed at run time, no smoothing (`smooth --alpha none --format dynamic`).</summary>
    W8A8PerToken,
    /// <summary>4-bit weights, blocks of 128, round-to-nearest (`awq --method rtn`).</summary>
    W4Rtn,
    /// <summary>4-bit weights, blocks of 128, AWQ scales and clipping (`awq`).</summary>
    W4Awq,
}

/// <summary>How far a layer's activation channels stand out (max over channels of max|x|, divided by their median).</summary>
public enum OutlierSeverity
{
    /// <summary>Ratio below 8: per-tensor int8 activations lose little.</summary>
    Low,
    /// <summary>8 to 32: smoothing or per-token scales pay off.</summary>
    Moderate,
    /// <summary>Above 32: the LLM.int8()/SmoothQuant regime, where naive W8A8 rounds most channels to a few levels.</summary>
    Severe,
}

public static class AdviceSchemes
{
    public static readonly IReadOnlyList<AdviceScheme> All = Enum.GetValues<AdviceScheme>();

    public static bool IsW4(AdviceScheme scheme) => scheme is AdviceScheme.W4Rtn or AdviceScheme.W4Awq;

    /// <summary>"W8A8 SmoothQuant", as the tables and the bench name them.</summary>
    public static string Describe(AdviceScheme scheme) => scheme switch
    {
        AdviceScheme.W8A8Naive => "W8A8 naive",
        AdviceScheme.W8A8SmoothQuant => "W8A8 SmoothQuant",
        AdviceScheme.W8A8PerToken => "W8A8 per-token dynamic",
        AdviceScheme.W4Rtn => "W4 RTN g128",
        AdviceScheme.W4Awq => "W4 AWQ g128",
        _ => throw new ArgumentOutOfRangeException(nameof(scheme)),
    };

    public static OutlierSeverity Severity(float maxOverMedian) =>
        maxOverMedian > 32 ? OutlierSeverity.Severe : maxOverMedian >= 8 ? OutlierSeverity.Moderate : OutlierSeverity.Low;
}
