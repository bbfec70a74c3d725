using OnnxQuant.Quantization;

namespace OnnxQuant.Awq;

/// <summary>Settings of the AWQ searches. Defaults follow the reference AWQ (docs/architecture.md, "AWQ") unless noted.</summary>
public sealed record AwqOptions
{
    /// <summary>The 4-bit quantization the search optimises for (block size, scheme, scale storage type).</summary>
    public Int4QuantOptions Quantization { get; init; } = new();

    /// <summary>Exponents r tried for s = mean|X|^r: r = i / GridPoints for i = 0..GridPoints-1 (r = 0 is plain RTN).</summary>
    public int GridPoints { get; init; } = 20;

    /// <summary>
    /// Search the ratio grid by golden-section narrowing (<see cref="Numerics.BracketSearch"/>) instead of evaluating
    /// every point: about half the loss evaluations, the same choice where the loss curve is unimodal. Off by default:
    /// on the Austen LM 3 of 23 groups' curves were not, and the narrowing picked a worse ratio there (docs/architecture.md, "Search cost").
    /// </summary>
    public bool BracketedGrid { get; init; }

    /// <summary>
    /// AutoAWQ's "duo scaling": s = mean|X|^r / mean|W_norm|^(1-r), with W normalised by its block maxima. On by
    /// default: on held-out text it lowered the error of MiniLM (relative error 0.2585 -> 0.2485) and of tiny-llama.
    /// </summary>
    public bool DuoScaling { get; init; } = true;

    /// <summary>
    /// Run the per-block clip search after scaling (not for q/k). On by default, decided on held-out text: it brought the
    /// output closer to FP32 on every model tried (MiniLM g128 error 0.2485 -> 0.2262; the Austen LM's outlier twin,
    /// all of Persuasion: logits error 0.0167 -> 0.0162, top-1 agreement 97.2% -> 97.3%). The
    /// Austen LM's perplexity moved the other way (77.35 -> 77.42, +0.09%), but at that scale perplexity does not track
    /// fidelity (RTN, the least faithful, scored 77.33 against FP32's 77.38); --no-clip turns it off.
    /// </summary>
    public bool Clip { get; init; } = true;

    /// <summary>Clip candidates: max shrink to 1 - MaxShrink * i / ClipSteps for i = 0..ClipSteps.</summary>
    public int ClipSteps { get; init; } = 20;

    public float MaxShrink { get; init; } = 0.5f;

    /// <summary>At most this many recorded rows (tokens) enter the searches; more are subsampled evenly.</summary>
    public int MaxRows { get; init; } = 512;

    internal void Validate()
    {
        if (GridPoints < 1 || GridPoints > 1000)
            throw new ArgumentOutOfRangeException(nameof(GridPoints), GridPoints, "the AWQ grid needs 1..1000 points");
        if (ClipSteps < 1 || ClipSteps > 1000)
            throw new ArgumentOutOfRangeException(nameof(ClipSteps), ClipSteps, "the clip search needs 1..1000 steps");
        if (!(MaxShrink > 0f && MaxShrink < 1f))
            throw new ArgumentOutOfRangeException(nameof(MaxShrink), MaxShrink, "the clip search's maximum shrink must be in (0, 1)");
        if (MaxRows < 1)
            throw new ArgumentOutOfRangeException(nameof(MaxRows), MaxRows, "the searches need at least one row");
    }
}
