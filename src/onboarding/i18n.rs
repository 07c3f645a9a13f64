//! The applicant's words, per language. English and Spanish to begin with;
//! a new language is one more `Strings` value.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Strings {
    pub lang: &'static str,
    pub title: &'static str,
    pub intro: &'static str,
    pub step: &'static str,
    pub of: &'static str,
    pub front: &'static str,
    pub front_help: &'static str,
    pub back: &'static str,
    pub back_help: &'static str,
    pub selfie: &'static str,
    pub selfie_help: &'static str,
    pub video: &'static str,
    pub video_help: &'static str,
    pub video_retake: &'static str,
    pub review: &'static str,
    pub review_help: &'static str,
    pub choose_photo: &'static str,
    pub choose_video: &'static str,
    pub record: &'static str,
    pub stop: &'static str,
    pub next: &'static str,
    pub previous: &'static str,
    pub skip: &'static str,
    pub submit: &'static str,
    pub uploading: &'static str,
    pub uploaded: &'static str,
    pub missing: &'static str,
    pub submitting: &'static str,
    pub done_title: &'static str,
    pub done_text: &'static str,
    pub continue_link: &'static str,
    pub closed_title: &'static str,
    pub invalid_text: &'static str,
    pub expired_text: &'static str,
    pub needs_js: &'static str,
    pub err_too_large: &'static str,
    pub err_wrong_type: &'static str,
    pub err_unreadable: &'static str,
    pub err_too_small: &'static str,
    pub err_too_many_pixels: &'static str,
    pub err_empty: &'static str,
    pub err_closed: &'static str,
    pub err_too_many: &'static str,
    pub err_network: &'static str,
    pub err_other: &'static str,
    pub err_not_asked: &'static str,
    pub retake_title: &'static str,
    pub retake_intro: &'static str,
    pub retake_reason: &'static str,
    pub retake_message: &'static str,
    pub reason_blurry: &'static str,
    pub reason_glare: &'static str,
    pub reason_cropped: &'static str,
    pub reason_wrong_document: &'static str,
    pub reason_expired_document: &'static str,
    pub reason_face_not_visible: &'static str,
    pub reason_other: &'static str,
}

impl Strings {
    /// A retake reason code in this language.
    pub fn reason(&self, code: &str) -> &'static str {
        match code {
            "blurry" => self.reason_blurry,
            "glare" => self.reason_glare,
            "cropped" => self.reason_cropped,
            "wrong_document" => self.reason_wrong_document,
            "expired_document" => self.reason_expired_document,
            "face_not_visible" => self.reason_face_not_visible,
            _ => self.reason_other,
        }
    }

    /// The page's name for a step (`front`, `back`, `selfie`, `video`).
    pub fn step_name(&self, step: crate::domain::retake::Step) -> &'static str {
        use crate::domain::retake::Step;
        match step {
            Step::Front => self.front,
            Step::Back => self.back,
            Step::Selfie => self.selfie,
            Step::Video => self.video_retake,
        }
    }
}

pub const EN: Strings = Strings {
    lang: "en",
    title: "Verify your identity",
    intro: "It takes about two minutes: photos of your identity document, a selfie and, if you like, a short video.",
    step: "Step",
    of: "of",
    front: "Front of your document",
    front_help: "Place the document on a dark surface, fill the frame, and avoid glare.",
    back: "Back of your document",
    back_help: "Turn the document over. The lines of letters and < signs must be readable.",
    selfie: "A selfie",
    selfie_help: "Face the camera in good light, without glasses or a hat.",
    video: "A short video (optional)",
    video_help: "Look at the camera and turn your head slowly left and right. Up to 15 seconds.",
    video_retake: "A short video",
    review: "Review and submit",
    review_help: "Check that everything is uploaded, then submit.",
    choose_photo: "Take a photo or choose a file",
    choose_video: "Choose a video file",
    record: "Record",
    stop: "Stop",
    next: "Next",
    previous: "Back",
    skip: "Skip",
    submit: "Submit",
    uploading: "Uploading…",
    uploaded: "Uploaded",
    missing: "Missing",
    submitting: "Submitting…",
    done_title: "Thank you",
    done_text: "Your documents were sent. You can close this page.",
    continue_link: "Continue",
    closed_title: "This link cannot be used",
    invalid_text: "The link is not valid, or the verification was removed. Ask the company that sent it for a new one.",
    expired_text: "The link has expired. Ask the company that sent it for a new one.",
    needs_js: "This page needs JavaScript to upload your photos.",
    err_too_large: "The file is too large.",
    err_wrong_type: "This kind of file is not accepted. Use a JPEG or PNG photo (or a WebM/MP4 video).",
    err_unreadable: "The file cannot be read. Take the photo again.",
    err_too_small: "The photo is too small to check. Use the camera or a larger image.",
    err_too_many_pixels: "The image is too large (too many pixels). Use a smaller one.",
    err_empty: "The file is empty.",
    err_closed: "This verification was already submitted.",
    err_too_many: "Too many uploads for this verification. Contact the company that sent you the link.",
    err_network: "The upload was interrupted. Check your connection and try again.",
    err_other: "Something went wrong. Try again.",
    err_not_asked: "This photo was not asked for again. Go to the next step.",
    retake_title: "We need new photos",
    retake_intro: "Please take these again:",
    retake_reason: "Why:",
    retake_message: "Message from the reviewer:",
    reason_blurry: "the image is blurred or out of focus",
    reason_glare: "glare or reflections hide part of the document",
    reason_cropped: "part of the document is cut off",
    reason_wrong_document: "it is not the document we asked for",
    reason_expired_document: "the document has expired; use a valid one",
    reason_face_not_visible: "your face is not clearly visible",
    reason_other: "see the reviewer's message",
};

pub const ES: Strings = Strings {
    lang: "es",
    title: "Verifica tu identidad",
    intro: "Lleva unos dos minutos: fotos de tu documento de identidad, un selfi y, si quieres, un vídeo corto.",
    step: "Paso",
    of: "de",
    front: "Anverso del documento",
    front_help: "Coloca el documento sobre una superficie oscura, que ocupe toda la imagen y sin reflejos.",
    back: "Reverso del documento",
    back_help: "Da la vuelta al documento. Las líneas de letras y signos < deben leerse bien.",
    selfie: "Un selfi",
    selfie_help: "Mira a la cámara con buena luz, sin gafas ni gorra.",
    video: "Un vídeo corto (opcional)",
    video_help: "Mira a la cámara y gira la cabeza despacio a izquierda y derecha. Hasta 15 segundos.",
    video_retake: "Un vídeo corto",
    review: "Revisa y envía",
    review_help: "Comprueba que todo está subido y envía.",
    choose_photo: "Haz una foto o elige un archivo",
    choose_video: "Elige un archivo de vídeo",
    record: "Grabar",
    stop: "Parar",
    next: "Siguiente",
    previous: "Atrás",
    skip: "Omitir",
    submit: "Enviar",
    uploading: "Subiendo…",
    uploaded: "Subido",
    missing: "Falta",
    submitting: "Enviando…",
    done_title: "Gracias",
    done_text: "Tus documentos se han enviado. Puedes cerrar esta página.",
    continue_link: "Continuar",
    closed_title: "Este enlace no se puede usar",
    invalid_text: "El enlace no es válido o la verificación se ha eliminado. Pide uno nuevo a la empresa que te lo envió.",
    expired_text: "El enlace ha caducado. Pide uno nuevo a la empresa que te lo envió.",
    needs_js: "Esta página necesita JavaScript para subir tus fotos.",
    err_too_large: "El archivo es demasiado grande.",
    err_wrong_type: "Este tipo de archivo no se acepta. Usa una foto JPEG o PNG (o un vídeo WebM/MP4).",
    err_unreadable: "No se puede leer el archivo. Haz la foto de nuevo.",
    err_too_small: "La foto es demasiado pequeña para comprobarla. Usa la cámara o una imagen mayor.",
    err_too_many_pixels: "La imagen es demasiado grande (demasiados píxeles). Usa una más pequeña.",
    err_empty: "El archivo está vacío.",
    err_closed: "Esta verificación ya se envió.",
    err_too_many: "Demasiadas subidas para esta verificación. Contacta con la empresa que te envió el enlace.",
    err_network: "La subida se interrumpió. Comprueba tu conexión e inténtalo de nuevo.",
    err_other: "Algo ha fallado. Inténtalo de nuevo.",
    err_not_asked: "No se ha pedido repetir esta foto. Pasa al siguiente paso.",
    retake_title: "Necesitamos fotos nuevas",
    retake_intro: "Por favor, repite:",
    retake_reason: "Motivo:",
    retake_message: "Mensaje del revisor:",
    reason_blurry: "la imagen está borrosa o desenfocada",
    reason_glare: "los reflejos ocultan parte del documento",
    reason_cropped: "parte del documento queda cortada",
    reason_wrong_document: "no es el documento que pedimos",
    reason_expired_document: "el documento ha caducado; usa uno válido",
    reason_face_not_visible: "no se ve bien tu cara",
    reason_other: "lee el mensaje del revisor",
};

/// `?lang=` wins, then the first supported language in `Accept-Language`.
pub fn pick(query: Option<&str>, accept_language: Option<&str>) -> &'static Strings {
    let by_code = |c: &str| match c.trim().get(..2).map(str::to_ascii_lowercase).as_deref() {
        Some("es") => Some(&ES),
        Some("en") => Some(&EN),
        _ => None,
    };
    if let Some(s) = query.and_then(by_code) {
        return s;
    }
    accept_language
        .into_iter()
        .flat_map(|h| h.split(','))
        .filter_map(|part| by_code(part.split(';').next().unwrap_or("")))
        .next()
        .unwrap_or(&EN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_is_chosen_from_query_then_header() {
        assert_eq!(pick(Some("es"), None).lang, "es");
        assert_eq!(pick(None, Some("es-ES,es;q=0.9,en;q=0.8")).lang, "es");
        assert_eq!(pick(Some("en"), Some("es-ES")).lang, "en");
        assert_eq!(pick(None, Some("fr-FR,de;q=0.5")).lang, "en");
        assert_eq!(pick(Some("xx"), None).lang, "en");
    }
}
